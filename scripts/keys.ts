/**
 * `npm run keys -- <command>`: manage API keys in DATABASE_URL.
 *   create --name <name> --plan <plan>   prints the new key once; only its hash is stored
 *   list [--all] [--json]                active keys (--all: revoked too)
 *   revoke <id|prefix>                   takes effect on every replica within AUTH_CACHE_TTL_SECONDS
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { parsePlans } from "../app/src/data/config.ts";
import { createKey, KeyNotFoundError, listKeys, revokeKey } from "../app/src/data/keys.ts";
import { migrate } from "../app/src/data/migrations.ts";

const USAGE = `usage: npm run keys -- <command>
  create --name <name> --plan <plan>   create a key (printed once)
  list [--all] [--json]                list keys (--all includes revoked)
  revoke <id|prefix>                   revoke a key
env: DATABASE_URL (required), RATE_LIMIT_PLANS (optional, the plans a key may have)`;

function fail(message: string, code = 2): never {
  console.error(message);
  process.exit(code);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: "string" },
    plan: { type: "string" },
    all: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
const [command, ...rest] = positionals;
if (values.help || !command) {
  console.log(USAGE);
  process.exit(command || values.help ? 0 : 2);
}
const url = process.env.DATABASE_URL;
if (!url) fail("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/inferstack)");

const fmt = (d: Date | null) => (d ? d.toISOString().replace(/\.\d+Z$/, "Z") : "-");
const client = new pg.Client({ connectionString: url });
try {
  await client.connect();
  await migrate(url);
  switch (command) {
    case "create": {
      const plans = parsePlans(process.env.RATE_LIMIT_PLANS);
      if (!values.name?.trim()) fail("create: --name <name> is required");
      if (!values.plan) fail(`create: --plan <plan> is required (one of: ${Object.keys(plans).join(", ")})`);
      if (!(values.plan in plans))
        fail(`create: unknown plan '${values.plan}' (one of: ${Object.keys(plans).join(", ")})`);
      const { key, row } = await createKey(client, values.name.trim(), values.plan);
      if (values.json) {
        console.log(JSON.stringify({ ...row, key }));
      } else {
        console.log(key);
        console.error(
          `created key ${row.id} '${row.name}' on plan '${row.plan}' (shown as ${row.prefix}…). Store it now: it is not shown again.`,
        );
      }
      break;
    }
    case "list": {
      const rows = await listKeys(client, { includeRevoked: values.all });
      if (values.json) {
        console.log(JSON.stringify(rows));
        break;
      }
      const table = rows.map((r) => [
        r.id,
        `${r.prefix}…`,
        r.name,
        r.plan,
        fmt(r.createdAt),
        fmt(r.lastUsedAt),
        r.revokedAt ? `revoked ${fmt(r.revokedAt)}` : "active",
      ]);
      const header = ["id", "key", "name", "plan", "created", "last used", "status"];
      const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
      for (const row of [header, ...table])
        console.log(
          row
            .map((c, i) => c.padEnd(widths[i]!))
            .join("  ")
            .trimEnd(),
        );
      break;
    }
    case "revoke": {
      const ref = rest[0];
      if (!ref) fail("revoke: give the key's id or prefix (see `npm run keys -- list`)");
      const row = await revokeKey(client, ref);
      if (values.json) console.log(JSON.stringify(row));
      else console.log(`revoked ${row.id} '${row.name}' (${row.prefix}…) at ${fmt(row.revokedAt)}`);
      break;
    }
    default:
      fail(`unknown command '${command}'\n${USAGE}`);
  }
} catch (err) {
  if (err instanceof KeyNotFoundError) fail(`keys: ${err.message}`, 1);
  fail(`keys: ${(err as Error).message}`, 1);
} finally {
  await client.end().catch(() => {});
}
