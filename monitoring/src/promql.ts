/**
 * Metric names referenced by a PromQL expression, read from the syntax tree of Prometheus's own
 * PromQL grammar (@prometheus-io/lezer-promql, the parser of the Prometheus web UI). An expression
 * that does not parse throws rather than yield a partial list of names.
 */
import { parser } from "@prometheus-io/lezer-promql";

/**
 * Grafana's global interval variables, which Grafana replaces before Prometheus sees the query:
 * durations where a range is expected, plain numbers for the `_ms`/`_s` forms.
 */
const grafanaVariables: [RegExp, string][] = [
  [/\$\{?__(?:interval_ms|range_ms|range_s)\}?(?!\w)/g, "60"],
  [/\$\{?__(?:rate_interval|interval|range)\}?(?!\w)/g, "5m"],
];

export function metricNames(expr: string): Set<string> {
  const promql = grafanaVariables.reduce((s, [variable, value]) => s.replace(variable, value), expr);
  const names = new Set<string>();
  let errorAt = -1;
  parser.parse(promql).iterate({
    enter(node) {
      if (node.type.isError && errorAt < 0) errorAt = node.from;
      // A selector's leading identifier is its metric name; identifiers elsewhere are labels.
      else if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector")
        names.add(promql.slice(node.from, node.to));
    },
  });
  if (errorAt >= 0) throw new SyntaxError(`not valid PromQL at character ${errorAt}: ${promql}`);
  return names;
}
