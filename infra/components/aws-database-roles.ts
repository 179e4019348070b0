/**
 * AwsDatabaseRoles: least-privilege Postgres roles, created inside the VPC before anything uses them.
 *
 * Roles (names in `databaseRoles`):
 * - owner: owns the schema's tables and runs the migrations; also the role to issue API keys with
 *   (`npm run keys`), as it alone may INSERT into `api_keys`.
 * - app: what the API process logs in as. Exactly the rights its code uses (`appGrants`): read
 *   `api_keys` and write only its `last_used_at`; read, COPY/INSERT and DELETE (retention)
 *   `predictions`; TEMPORARY on the database (the prediction log's de-duplicating staging table);
 *   no CREATE anywhere, so it can neither create, alter nor drop tables.
 * - monitor: `pg_monitor`, for the Postgres exporter.
 * - grafana: owns a separate `grafana` database, Grafana's own store (users, sessions, annotations).
 * The RDS-managed master user (its password generated and kept by RDS in Secrets Manager) is used
 * by nothing but this setup step; it stays the administrators' account.
 *
 * How they come to exist on a real `pulumi up`: RDS is private, so no program outside the VPC can
 * reach it. A one-shot Fargate task (the app image, so migrations match the code being deployed)
 * runs `setupScript`: as the master user, create or update the roles and set each password from its
 * Secrets Manager secret (sent as a SCRAM verifier, so the clear text never reaches the server or
 * its logs), then as the owner apply the migrations and set the app role's grants, exactly.
 * A small Lambda starts that task and waits for it to stop (`aws.lambda.Invocation` runs it during
 * the update and fails the update if the task fails); the app and monitoring services depend on
 * it, so new code never meets an old schema or a missing role. It runs again whenever the image,
 * the script or the task definition changes.
 *
 * Passwords: one Secrets Manager secret per role (`{"username", "password"}`), generated once by
 * the program; `ignoreChanges` on the value so a rotation outside Pulumi is kept. To rotate without
 * a redeploy of the program: put a new value in the secret, run the setup task again
 * (`aws lambda invoke --function-name <dbSetupFunction>`), then `aws ecs update-service
 * --force-new-deployment` the service that uses it (ECS reads secrets at task start).
 *
 * Cost: four secrets ($0.40/month each); the setup task's few seconds of Fargate per update and the
 * Lambda's one invocation are within cents; the two log groups at CloudWatch Logs rates.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { executionRolePolicy } from "./aws-fargate-service.ts";

export interface DatabaseRoleNames {
  owner: string;
  app: string;
  monitor: string;
  grafana: string;
}

/** The roles on every AWS stack's instance (one instance per stack). */
export const databaseRoles: DatabaseRoleNames = {
  owner: "inferstack_owner",
  app: "inferstack_app",
  monitor: "inferstack_monitor",
  grafana: "inferstack_grafana",
};

/** What the app role may do on each table the migrations create; nothing else. */
export const appGrants: Record<string, string[]> = {
  api_keys: ["SELECT", "UPDATE (last_used_at)"],
  predictions: ["SELECT", "INSERT", "DELETE"],
  // schema_migrations: none; the app runs with MIGRATE_ON_START=off.
  schema_migrations: [],
};

const identifier = /^[a-z_][a-z0-9_]{0,62}$/;
function ident(name: string): string {
  if (!identifier.test(name)) throw new Error(`"${name}" is not a plain lowercase Postgres identifier`);
  return `"${name}"`;
}

export interface SetupPlan {
  roles: DatabaseRoleNames;
  database: string;
  grafanaDatabase: string;
  /** Run as the master user in one transaction (the role passwords arrive as `inferstack.verifier_<role>` settings). */
  bootstrap: string[];
  /** Run as the master user, on its own (CREATE DATABASE cannot run in a transaction), if the database is missing. */
  grafanaDatabaseSql: string;
  /** Run as the master user after it: only the grafana role may connect there. */
  grafanaDatabaseAccess: string;
  /** Run as the owner in one transaction, after the migrations. */
  grants: string[];
  /** Path of the migrations module, relative to the working directory (the image's /app). */
  migrationsModule: string;
}

/** The SQL the setup task runs, for the given role and database names. */
export function setupPlan(roles: DatabaseRoleNames, database: string, grafanaDatabase: string): SetupPlan {
  const r = {
    owner: ident(roles.owner),
    app: ident(roles.app),
    monitor: ident(roles.monitor),
    grafana: ident(roles.grafana),
  };
  const db = ident(database);
  const roleNames = Object.values(roles)
    .map((n) => `'${n}'`)
    .join(", ");
  return {
    roles,
    database,
    grafanaDatabase,
    bootstrap: [
      // Two setups at once (a retried update) would race on CREATE ROLE.
      "SELECT pg_advisory_xact_lock(1768846949, 1919251317)",
      `DO $$ DECLARE name text; BEGIN
         FOREACH name IN ARRAY ARRAY[${roleNames}] LOOP
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN EXECUTE format('CREATE ROLE %I', name); END IF;
           EXECUTE format('ALTER ROLE %I WITH LOGIN INHERIT NOCREATEDB NOCREATEROLE PASSWORD %L',
                          name, current_setting('inferstack.verifier_' || name));
         END LOOP;
       END $$`,
      // The master user acts for the owner (hand-over below) and the grafana role (its database).
      `GRANT ${r.owner}, ${r.grafana} TO CURRENT_USER`,
      `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
      `GRANT CONNECT ON DATABASE ${db} TO ${r.owner}, ${r.monitor}`,
      `GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${r.app}`,
      "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
      `GRANT USAGE, CREATE ON SCHEMA public TO ${r.owner}`,
      `GRANT USAGE ON SCHEMA public TO ${r.app}`,
      // Tables an earlier program created as the master user pass to the owner.
      `DO $$ DECLARE t record; BEGIN
         FOR t IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm') AND pg_get_userbyid(c.relowner) = current_user LOOP
           EXECUTE format('ALTER %s %I OWNER TO ${r.owner}',
                          CASE t.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, t.relname);
         END LOOP;
       END $$`,
      `GRANT pg_monitor TO ${r.monitor}`,
    ],
    grafanaDatabaseSql: `CREATE DATABASE ${ident(grafanaDatabase)} OWNER ${r.grafana}`,
    grafanaDatabaseAccess: `REVOKE ALL ON DATABASE ${ident(grafanaDatabase)} FROM PUBLIC`,
    grants: [
      // Exact: whatever the app role held before is taken back, then the list is granted.
      `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${r.app}`,
      `REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ${r.app}`,
      ...Object.entries(appGrants)
        .filter(([, privileges]) => privileges.length > 0)
        .map(([table, privileges]) => `GRANT ${privileges.join(", ")} ON TABLE ${ident(table)} TO ${r.app}`),
    ],
    migrationsModule: "app/src/data/migrations.ts",
  };
}

/**
 * A SCRAM-SHA-256 verifier (RFC 7677, as Postgres stores it): ALTER ROLE accepts it in place of a
 * password. Passwords here are ASCII letters and digits, which SASLprep leaves unchanged.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/**
 * The setup program, run with `node -e` in the app image's /app (CommonJS; `pg` from its
 * node_modules). Environment: SETUP_DATABASE_URL (host, port, database, TLS; no user),
 * SETUP_MASTER_USER, SETUP_MASTER_PASSWORD and SETUP_<OWNER|APP|MONITOR|GRAFANA>_PASSWORD.
 */
export function setupScript(plan: SetupPlan): string {
  return `"use strict";
const pg = require("pg");
const { createHash, createHmac, pbkdf2Sync, randomBytes } = require("node:crypto");
const { resolve } = require("node:path");
const { pathToFileURL } = require("node:url");
const plan = ${JSON.stringify(plan)};
const env = process.env;
// scramVerifier() of aws-database-roles.ts, as plain JavaScript.
function scramVerifier(password) {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, 4096, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return "SCRAM-SHA-256$4096:" + salt.toString("base64") + "$" + storedKey.toString("base64") + ":" + serverKey.toString("base64");
}
function url(user, password, database) {
  const u = new URL(env.SETUP_DATABASE_URL);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  if (database) u.pathname = "/" + database;
  return u.toString();
}
function need(name) {
  const value = env[name];
  if (!value) throw new Error(name + " is not set");
  return value;
}
async function connect(user, password, database) {
  const client = new pg.Client({ connectionString: url(user, password, database), application_name: "inferstack-db-setup", connectionTimeoutMillis: 10000 });
  await client.connect();
  return client;
}
async function main() {
  const passwords = Object.fromEntries(Object.keys(plan.roles).map((k) => [k, need("SETUP_" + k.toUpperCase() + "_PASSWORD")]));
  const master = await connect(need("SETUP_MASTER_USER"), need("SETUP_MASTER_PASSWORD"));
  try {
    await master.query("BEGIN");
    for (const [key, role] of Object.entries(plan.roles)) {
      await master.query("SELECT set_config($1, $2, true)", ["inferstack.verifier_" + role, scramVerifier(passwords[key])]);
    }
    for (const sql of plan.bootstrap) await master.query(sql);
    await master.query("COMMIT");
    const exists = await master.query("SELECT 1 FROM pg_database WHERE datname = $1", [plan.grafanaDatabase]);
    if (exists.rowCount === 0) await master.query(plan.grafanaDatabaseSql);
    await master.query(plan.grafanaDatabaseAccess);
    console.log(JSON.stringify({ step: "roles", roles: Object.values(plan.roles), grafanaDatabase: exists.rowCount === 0 ? "created" : "exists" }));
  } finally {
    await master.end().catch(() => {});
  }
  const { migrate } = await import(pathToFileURL(resolve(plan.migrationsModule)).href);
  const result = await migrate(url(plan.roles.owner, passwords.owner));
  console.log(JSON.stringify({ step: "migrations", applied: result.applied, alreadyApplied: result.alreadyApplied, newerInDatabase: result.newerInDatabase }));
  const owner = await connect(plan.roles.owner, passwords.owner);
  try {
    await owner.query("BEGIN");
    for (const sql of plan.grants) await owner.query(sql);
    await owner.query("COMMIT");
    console.log(JSON.stringify({ step: "grants", statements: plan.grants.length }));
  } finally {
    await owner.end().catch(() => {});
  }
}
main().catch((err) => { console.error("db setup failed: " + err.message); process.exit(1); });
`;
}

/** The Lambda that starts the setup task and waits for it (Node.js runtime: AWS SDK v3 built in). */
const runTaskHandler = `import { ECSClient, RunTaskCommand, DescribeTasksCommand } from "@aws-sdk/client-ecs";
const ecs = new ECSClient({});
export const handler = async (event, context) => {
  const started = await ecs.send(new RunTaskCommand({
    cluster: process.env.CLUSTER, taskDefinition: event.taskDefinition, launchType: "FARGATE", count: 1,
    networkConfiguration: { awsvpcConfiguration: { subnets: process.env.SUBNETS.split(","), securityGroups: process.env.SECURITY_GROUPS.split(","), assignPublicIp: "DISABLED" } },
  }));
  if (!started.tasks?.length) throw new Error("RunTask started nothing: " + JSON.stringify(started.failures));
  const arn = started.tasks[0].taskArn;
  for (;;) {
    if (context.getRemainingTimeInMillis() < 15000) throw new Error("setup task " + arn + " still running; see its log group");
    await new Promise((r) => setTimeout(r, 5000));
    const { tasks } = await ecs.send(new DescribeTasksCommand({ cluster: process.env.CLUSTER, tasks: [arn] }));
    const task = tasks?.[0];
    if (task?.lastStatus !== "STOPPED") continue;
    const container = task.containers?.find((c) => c.name === "db-setup");
    if (container?.exitCode === 0) return { taskArn: arn, exitCode: 0 };
    throw new Error("setup task " + arn + " failed: exit " + container?.exitCode + ", " + (container?.reason ?? task.stoppedReason) + "; see its log group");
  }
};
`;

export interface AwsDatabaseRolesArgs {
  namePrefix: string;
  clusterArn: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** A group the Postgres group admits (the app's). */
  securityGroupIds: pulumi.Input<string>[];
  architecture: "X86_64" | "ARM64";
  /** The app image (it carries node, pg, the migrations and the RDS CA bundle). */
  image: pulumi.Input<string>;
  repositoryArns: pulumi.Input<string>[];
  /** `postgres://host:port/database?…` without a user: TLS settings as the app's. */
  databaseUrl: pulumi.Input<string>;
  database: string;
  masterUsername: string;
  masterSecretArn: pulumi.Input<string>;
  logRetentionDays: number;
}

export class AwsDatabaseRoles extends pulumi.ComponentResource {
  /** Secret ARNs per role (JSON `{username, password}`). */
  readonly secretArns: Record<keyof DatabaseRoleNames, pulumi.Output<string>>;
  readonly roles = databaseRoles;
  readonly grafanaDatabase = "grafana";
  readonly taskDefinitionArn: pulumi.Output<string>;
  readonly functionName: pulumi.Output<string>;
  /** Done when the roles exist and the schema is migrated: services dependOn it. */
  readonly ready: pulumi.Resource;

  constructor(name: string, args: AwsDatabaseRolesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:DatabaseRoles", name, {}, opts);
    const parent = { parent: this };
    const plan = setupPlan(databaseRoles, args.database, this.grafanaDatabase);
    const script = setupScript(plan);

    const secretArns = {} as Record<keyof DatabaseRoleNames, pulumi.Output<string>>;
    for (const key of Object.keys(databaseRoles) as (keyof DatabaseRoleNames)[]) {
      const password = new random.RandomPassword(`${name}-${key}`, { length: 32, special: false }, parent);
      const secret = new aws.secretsmanager.Secret(
        `${name}-${key}`,
        { description: `Postgres role ${databaseRoles[key]}`, recoveryWindowInDays: 7 },
        parent,
      );
      const version = new aws.secretsmanager.SecretVersion(
        `${name}-${key}`,
        {
          secretId: secret.id,
          secretString: pulumi.secret(
            pulumi.jsonStringify({ username: databaseRoles[key], password: password.result }),
          ),
        },
        { parent: this, ignoreChanges: ["secretString"] },
      );
      secretArns[key] = version.arn;
    }
    this.secretArns = secretArns;

    const logGroup = new aws.cloudwatch.LogGroup(
      name,
      { name: `/ecs/${args.namePrefix}-db-setup`, retentionInDays: args.logRetentionDays },
      parent,
    );
    const region = aws.getRegionOutput({}, parent);
    const executionRole = new aws.iam.Role(
      `${name}-execution`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        description: `ECS agent for ${args.namePrefix}-db-setup: pull the app image, write its logs, read the database secrets`,
      },
      parent,
    );
    const readable = [args.masterSecretArn, ...Object.values(secretArns)];
    new aws.iam.RolePolicy(
      `${name}-execution`,
      {
        role: executionRole.id,
        policy: pulumi
          .all([pulumi.output(args.repositoryArns), pulumi.all(readable), logGroup.arn])
          .apply(([repos, secrets, logArn]) => executionRolePolicy(repos, secrets, logArn)),
      },
      parent,
    );

    const secretEnv = {
      SETUP_MASTER_PASSWORD: pulumi.interpolate`${args.masterSecretArn}:password::`,
      ...Object.fromEntries(
        (Object.keys(secretArns) as (keyof DatabaseRoleNames)[]).map((k) => [
          `SETUP_${k.toUpperCase()}_PASSWORD`,
          pulumi.interpolate`${secretArns[k]}:password::`,
        ]),
      ),
    };
    const family = `${args.namePrefix}-db-setup`;
    const taskDefinition = new aws.ecs.TaskDefinition(
      name,
      {
        family,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: "256",
        memory: "512",
        runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: args.architecture },
        executionRoleArn: executionRole.arn,
        containerDefinitions: pulumi.jsonStringify([
          {
            name: "db-setup",
            image: args.image,
            essential: true,
            command: ["node", "-e", script],
            environment: [
              { name: "SETUP_DATABASE_URL", value: args.databaseUrl },
              { name: "SETUP_MASTER_USER", value: args.masterUsername },
              { name: "NODE_ENV", value: "production" },
            ],
            secrets: Object.entries(secretEnv).map(([envName, valueFrom]) => ({ name: envName, valueFrom })),
            readonlyRootFilesystem: true,
            logConfiguration: {
              logDriver: "awslogs",
              options: {
                "awslogs-group": logGroup.name,
                "awslogs-region": region.region,
                "awslogs-stream-prefix": "db-setup",
              },
            },
          },
        ]),
      },
      parent,
    );

    // The Lambda's own log group, made first with the tier's retention (Lambda would create one that never expires).
    const fnLogGroup = new aws.cloudwatch.LogGroup(
      `${name}-runner`,
      { name: `/aws/lambda/${args.namePrefix}-db-setup`, retentionInDays: args.logRetentionDays },
      parent,
    );
    const fnRole = new aws.iam.Role(
      `${name}-runner`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        description: `Starts ${family} and waits for it`,
      },
      parent,
    );
    const caller = aws.getCallerIdentityOutput({}, parent);
    const partition = aws.getPartitionOutput({}, parent);
    // Every revision of this family (the invocation names the current one).
    const familyArn = pulumi.interpolate`arn:${partition.partition}:ecs:${region.region}:${caller.accountId}:task-definition/${family}:*`;
    new aws.iam.RolePolicy(
      `${name}-runner`,
      {
        role: fnRole.id,
        policy: pulumi
          .all([familyArn, pulumi.output(args.clusterArn), executionRole.arn, fnLogGroup.arn])
          .apply(([tdArn, clusterArn, execArn, logArn]) =>
            JSON.stringify({
              Version: "2012-10-17",
              Statement: [
                {
                  Sid: "Run",
                  Effect: "Allow",
                  Action: ["ecs:RunTask"],
                  Resource: tdArn,
                  Condition: { ArnEquals: { "ecs:cluster": clusterArn } },
                },
                {
                  Sid: "Watch",
                  Effect: "Allow",
                  Action: ["ecs:DescribeTasks"],
                  Resource: "*",
                  Condition: { ArnEquals: { "ecs:cluster": clusterArn } },
                },
                {
                  Sid: "PassRole",
                  Effect: "Allow",
                  Action: ["iam:PassRole"],
                  Resource: execArn,
                  Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
                },
                {
                  Sid: "Logs",
                  Effect: "Allow",
                  Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
                  Resource: `${logArn}:*`,
                },
              ],
            }),
          ),
      },
      parent,
    );
    const fn = new aws.lambda.Function(
      `${name}-runner`,
      {
        name: `${args.namePrefix}-db-setup`,
        role: fnRole.arn,
        runtime: aws.lambda.Runtime.NodeJS22dX,
        handler: "index.handler",
        code: new pulumi.asset.AssetArchive({ "index.mjs": new pulumi.asset.StringAsset(runTaskHandler) }),
        timeout: 900,
        memorySize: 128,
        loggingConfig: { logFormat: "Text", logGroup: fnLogGroup.name },
        environment: {
          variables: {
            CLUSTER: args.clusterArn,
            SUBNETS: pulumi.all(args.subnetIds).apply((ids) => ids.join(",")),
            SECURITY_GROUPS: pulumi.all(args.securityGroupIds).apply((ids) => ids.join(",")),
          },
        },
      },
      { parent: this, dependsOn: [fnLogGroup] },
    );

    // Runs again when the task definition changes (a new image, script or secret).
    this.ready = new aws.lambda.Invocation(
      `${name}-run`,
      {
        functionName: fn.name,
        input: pulumi.jsonStringify({ taskDefinition: taskDefinition.arn }),
        triggers: { taskDefinition: taskDefinition.arn },
      },
      parent,
    );

    this.taskDefinitionArn = taskDefinition.arn;
    this.functionName = fn.name;
    this.registerOutputs({ taskDefinitionArn: this.taskDefinitionArn, functionName: this.functionName });
  }
}
