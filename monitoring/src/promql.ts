/**
 * Metric names referenced by a PromQL expression, found with a small tokenizer: enough for the
 * expressions in our rules and dashboards (the real parser, promtool, validates their syntax).
 */

const keywords = new Set([
  "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
  "inf", "nan", "atan2",
]);

/** Clauses whose parenthesised contents are label names, not metrics. */
const labelListClause = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

export function metricNames(expr: string): Set<string> {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // range and subquery selectors
    .replace(labelListClause, " ")
    .replace(/\$\{?[A-Za-z_]\w*\}?/g, " "); // Grafana variables
  s = s.replace(/\boffset\s+-?[0-9a-z]+/g, " ");
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const word = m[0];
    const after = s.slice((m.index ?? 0) + word.length).trimStart();
    if (after.startsWith("(")) continue; // function or aggregation
    if (keywords.has(word.toLowerCase())) continue;
    const before = s.slice(0, m.index ?? 0);
    if (/[0-9.]$/.test(before) || /\d[eE]$/.test(before)) continue; // duration/number suffix, e.g. 5m, 1e9
    names.add(word);
  }
  return names;
}
