/**
 * Rollback decisions, pure: from a stack's update history (`pulumi stack history --json`, newest
 * first, the shape the Automation API's `Stack.history()` returns) pick the update to return to,
 * and refuse clearly when that cannot be done safely.
 *
 * Update identity: the Pulumi Cloud numbers updates (`version`), but the file backend (`pulumi
 * login file://` or `s3://`) reports version 0 for every one. So each update gets a `ref`: its
 * version when versions are usable, otherwise its start time (`2026-11-20T10:15:03Z`, with
 * `#2`, `#3` appended if several share a second). `--to` accepts a ref, a version, a start time
 * (or unique prefix of one), or a git commit (7+ hex chars).
 */

export interface HistoryConfigValue {
  value?: string;
  secret?: boolean;
  object?: boolean;
}

/** One entry of the history; times may be strings (CLI JSON) or Dates (Automation API). */
export interface UpdateRecord {
  version: number;
  kind: string;
  startTime: string | Date;
  endTime?: string | Date;
  message?: string;
  result: string;
  environment?: Record<string, string>;
  config?: Record<string, HistoryConfigValue>;
  resourceChanges?: Record<string, number>;
}

export interface IdentifiedUpdate {
  ref: string;
  /** Position in the history, 1 = most recent. */
  position: number;
  record: UpdateRecord;
  startTime: string;
  commit?: string;
  dirty: boolean;
  imageDigest?: string;
}

export class RollbackRefused extends Error {}

const iso = (t: string | Date) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
const digestPattern = /sha256:[0-9a-f]{64}/;

/** The app image digest, if the update recorded it (deploy message or an `*image*` config value). */
export function imageDigestOf(u: UpdateRecord): string | undefined {
  const fromMessage = u.message?.match(digestPattern)?.[0];
  if (fromMessage) return fromMessage;
  for (const [key, v] of Object.entries(u.config ?? {})) {
    if (/image/i.test(key) && !v.secret) {
      const m = v.value?.match(digestPattern)?.[0];
      if (m) return m;
    }
  }
  return undefined;
}

/** Gives every entry a ref that identifies it on the Pulumi Cloud and on the file backend alike. */
export function identifyUpdates(history: UpdateRecord[]): IdentifiedUpdate[] {
  const versions = history.map((u) => u.version);
  const versionsUsable =
    versions.every((v) => Number.isInteger(v) && v > 0) && new Set(versions).size === versions.length;
  const seen = new Map<string, number>();
  // Oldest first, so the first update of a given second keeps the bare time as its ref.
  const refs = [...history].reverse().map((u) => {
    if (versionsUsable) return String(u.version);
    const t = iso(u.startTime);
    const n = (seen.get(t) ?? 0) + 1;
    seen.set(t, n);
    return n === 1 ? t : `${t}#${n}`;
  });
  refs.reverse();
  return history.map((record, i) => ({
    ref: refs[i]!,
    position: i + 1,
    record,
    startTime: iso(record.startTime),
    ...(record.environment?.["git.head"] ? { commit: record.environment["git.head"] } : {}),
    dirty: record.environment?.["git.dirty"] === "true",
    ...(imageDigestOf(record) ? { imageDigest: imageDigestOf(record) } : {}),
  }));
}

export interface RollbackDecision {
  current: IdentifiedUpdate;
  target: IdentifiedUpdate;
  /** Things the operator should know but that do not block the rollback. */
  warnings: string[];
}

function describe(u: IdentifiedUpdate): string {
  return `${u.ref} (${u.record.kind}, ${u.record.result}, ${u.startTime}${u.commit ? `, commit ${u.commit.slice(0, 7)}` : ""})`;
}

function matchTarget(updates: IdentifiedUpdate[], to: string): IdentifiedUpdate[] {
  const exact = updates.filter((u) => u.ref === to);
  if (exact.length) return exact;
  if (/^\d+$/.test(to)) {
    const byVersion = updates.filter((u) => String(u.record.version) === to);
    if (byVersion.length > 1)
      throw new RollbackRefused(
        `--to ${to}: ${byVersion.length} updates have version ${to} (the file backend numbers every update 0); use the start time or commit instead`,
      );
    return byVersion;
  }
  if (/^[0-9a-f]{7,40}$/i.test(to)) {
    const byCommit = updates.filter((u) => u.commit?.toLowerCase().startsWith(to.toLowerCase()));
    if (byCommit.length) {
      // Several updates of one commit: the newest that succeeded is the one worth returning to.
      return [byCommit.find((u) => u.record.result === "succeeded") ?? byCommit[0]!];
    }
  }
  const byTime = updates.filter((u) => u.startTime.startsWith(to) || u.ref.startsWith(to));
  if (byTime.length > 1)
    throw new RollbackRefused(
      `--to ${to} matches ${byTime.length} updates: ${byTime.map((u) => u.ref).join(", ")}; give more of the start time`,
    );
  return byTime;
}

/**
 * Picks the rollback target. Without `to`: the newest update before the current one that
 * succeeded and deployed a different commit (re-running the current commit would change nothing).
 * `commitExists` says whether the local git repository has a commit.
 */
export function decideRollback(
  history: UpdateRecord[],
  to: string | undefined,
  commitExists: (sha: string) => boolean,
): RollbackDecision {
  const updates = identifyUpdates(history).filter((u) => u.record.kind === "update");
  if (updates.length === 0) throw new RollbackRefused("the stack has no updates to roll back from");
  const current = updates[0]!;
  if (current.record.result === "in-progress")
    throw new RollbackRefused(
      `an update is still in progress (${describe(current)}); wait for it or run \`pulumi cancel\``,
    );
  const warnings: string[] = [];
  let target: IdentifiedUpdate | undefined;
  if (to !== undefined) {
    const matches = matchTarget(updates, to);
    if (matches.length === 0) {
      throw new RollbackRefused(
        `--to ${to}: no such update. Known updates:\n${updates
          .slice(0, 15)
          .map((u) => `  ${describe(u)}`)
          .join("\n")}`,
      );
    }
    target = matches[0]!;
    if (target === current)
      throw new RollbackRefused(`--to ${to} is the current update ${describe(current)}; nothing to roll back to`);
  } else {
    const earlier = updates.slice(1).filter((u) => u.record.result === "succeeded");
    target = earlier.find((u) => !current.commit || u.commit !== current.commit) ?? earlier[0];
    if (!target) throw new RollbackRefused(`no succeeded update before the current one ${describe(current)}`);
    if (current.commit && target.commit === current.commit)
      warnings.push(`the target deployed the same commit as the current update; only its config differs`);
  }
  if (target.record.result !== "succeeded")
    throw new RollbackRefused(`update ${describe(target)} did not succeed; roll back only to an update that succeeded`);
  if (!target.commit)
    throw new RollbackRefused(
      `update ${describe(target)} recorded no git commit (git.head), so its source cannot be restored`,
    );
  if (!commitExists(target.commit))
    throw new RollbackRefused(
      `commit ${target.commit} of update ${target.ref} is not in this repository (fetch it: git fetch origin ${target.commit})`,
    );
  if (target.dirty)
    warnings.push(
      `update ${target.ref} ran from a working tree with uncommitted changes (git.dirty); commit ${target.commit.slice(0, 7)} may differ from what it deployed`,
    );
  if (current.record.result !== "succeeded")
    warnings.push(`the current update ${current.ref} ${current.record.result}; resources may be partly updated`);
  if (!target.imageDigest)
    warnings.push("the target recorded no image digest; the app image will be rebuilt from its commit");
  return { current, target, warnings };
}

/** The update message that marks a rollback and where it came from. */
export function rollbackMessage(stack: string, d: RollbackDecision): string {
  const c = (u: IdentifiedUpdate) => (u.commit ? ` (commit ${u.commit.slice(0, 12)})` : "");
  return `rollback of ${stack} to update ${d.target.ref}${c(d.target)} from update ${d.current.ref}${c(d.current)}${d.target.imageDigest ? ` image ${d.target.imageDigest}` : ""}`;
}

/** Config keys whose value at the target differs from what its commit's stack file gives. */
export function configDrift(
  target: Record<string, HistoryConfigValue>,
  fromFile: Record<string, HistoryConfigValue>,
): string[] {
  return Object.keys(target)
    .filter((k) => target[k]?.value !== undefined && normalize(target[k]?.value) !== normalize(fromFile[k]?.value))
    .sort();
}

/** Structured values come back as JSON text whose spacing differs between commands. */
function normalize(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === "object" && parsed !== null ? JSON.stringify(parsed) : value;
  } catch {
    return value;
  }
}
