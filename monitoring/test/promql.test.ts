// metricNames on the constructs our rules and dashboards use, and on input that is not PromQL.

import assert from "node:assert/strict";
import { test } from "node:test";
import { metricNames } from "../src/promql.ts";

const names = (expr: string) => [...metricNames(expr)].sort();

test("finds selectors' metric names, not functions, labels, keywords or durations", () => {
  assert.deepEqual(
    names(
      'sum by (model, le) (rate(a_bucket{job="x", model=~"m.*"}[5m] offset 1h)) / on (job) group_left (instance) b:ratio5m > bool 1e3',
    ),
    ["a_bucket", "b:ratio5m"],
  );
  assert.deepEqual(names("histogram_quantile(0.99, sum without (pod) (rate(c_seconds_bucket[1m:30s])))"), [
    "c_seconds_bucket",
  ]);
  assert.deepEqual(names("(probe_ssl_earliest_cert_expiry - time()) / 86400 and absent(up) or vector(0)"), [
    "probe_ssl_earliest_cert_expiry",
    "up",
  ]);
});

test("reads Grafana's interval variables as the durations Grafana puts in their place", () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${var} interval syntax, meant literally
  assert.deepEqual(names('sum(increase(d_total{model="$model"}[$__range])) / rate(e_total[${__rate_interval}])'), [
    "d_total",
    "e_total",
  ]);
});

test("throws on an expression that is not PromQL, naming where", () => {
  assert.throws(
    () => metricNames("sum(rate(x_total[5m])"),
    /not valid PromQL at character \d+: sum\(rate\(x_total\[5m\]\)/,
  );
  assert.throws(() => metricNames("rate(x_total[$__unknown])"), SyntaxError);
});
