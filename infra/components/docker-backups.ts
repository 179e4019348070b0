/**
 * DockerBackups: nightly `pg_dump` of the stack's database into a volume, with retention.
 *
 * Creates: a `backups` volume and a small container running busybox `crond` in the same pinned
 * Postgres image (so `pg_dump` always matches the server's major version). On start it takes a
 * backup at once if none is younger than a day, then one per `schedule`; each run writes
 * `<db>-<UTC timestamp>.dump` (custom format: `pg_restore` can restore one table or all), checks
 * it with `pg_restore --list`, and deletes dumps older than `retentionDays`. The healthcheck turns
 * unhealthy when the newest dump is older than 26 h, so a silently failing job shows up in
 * `docker ps` and in Prometheus. The password reaches the job through a 0600 pgpass file written
 * at start, never through argv or the crontab.
 *
 * Inputs:
 * - `placement`: name prefix and labels.
 * - `network`: the data network where Postgres answers.
 * - `postgresHost`, `database`, `user`, `password` (secret): what to dump.
 * - `schedule`: 5-field cron expression (UTC).
 * - `retentionDays`: dumps older than this are deleted.
 * - `memoryMiB`: container memory limit.
 *
 * Cost: disk only (a compressed dump per day × retention).
 * Restore: see docs/deploy-docker.md.
 */

import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import {
  containerDefaults,
  type DockerPlacement,
  labelList,
  pullPinned,
  REPLACE_IN_PLACE,
  shellHealthcheck,
  WAIT_HEALTHY,
} from "./docker-shared.ts";

export interface DockerBackupsArgs {
  placement: DockerPlacement;
  network: docker.Network;
  postgresHost: string;
  database: string;
  user: string;
  password: pulumi.Input<string>;
  schedule: string;
  retentionDays: number;
  memoryMiB: number;
}

export const DEFAULT_BACKUP_DIR = "/backups";

/** The job one cron run executes. Pure so the test can read it. */
export function renderBackupScript(a: {
  postgresHost: string;
  database: string;
  user: string;
  retentionDays: number;
  backupDir?: string;
}): string {
  const BACKUP_DIR = a.backupDir ?? DEFAULT_BACKUP_DIR;
  return `#!/bin/sh
# One backup run: dump, verify, prune. Exits non-zero on any failure (logged by crond).
set -eu
export PGPASSFILE=/run/backup/pgpass
stamp=$(date -u +%Y%m%dT%H%M%SZ)
target="${BACKUP_DIR}/${a.database}-$stamp.dump"
# A second run within the same second (a manual run next to cron's) must not overwrite the first.
if [ -e "$target" ]; then target="${BACKUP_DIR}/${a.database}-$stamp-$$.dump"; fi
# A failed run leaves nothing half-written behind.
trap 'rm -f "$target.partial"' EXIT
pg_dump -h ${a.postgresHost} -U ${a.user} -d ${a.database} --format=custom --compress=6 --no-owner --file="$target.partial"
pg_restore --list "$target.partial" > /dev/null
mv "$target.partial" "$target"
find ${BACKUP_DIR} -name '${a.database}-*.dump' -type f -mtime +${a.retentionDays - 1} -delete
find ${BACKUP_DIR} -name '*.partial' -type f -mmin +120 -delete
echo "backup ok: $target ($(du -h "$target" | cut -f1))"
`;
}

/** Container entrypoint: credentials file, first backup if due, then crond in the foreground. */
export function renderBackupEntrypoint(a: {
  postgresHost: string;
  database: string;
  user: string;
  schedule: string;
}): string {
  const BACKUP_DIR = DEFAULT_BACKUP_DIR;
  return `#!/bin/sh
set -eu
umask 077
mkdir -p /run/backup
printf '%s:5432:%s:%s:%s\\n' '${a.postgresHost}' '${a.database}' '${a.user}' "$PGPASSWORD" > /run/backup/pgpass
unset PGPASSWORD
echo '${a.schedule} /usr/local/bin/inferstack-backup >> /proc/1/fd/1 2>&1' > /etc/crontabs/root
if [ -z "$(find ${BACKUP_DIR} -name '${a.database}-*.dump' -mmin -1440 | head -n 1)" ]; then
  until pg_isready -q -h ${a.postgresHost} -U ${a.user} -d ${a.database}; do sleep 2; done
  /usr/local/bin/inferstack-backup || echo "first backup failed; crond will retry on schedule"
fi
exec crond -f -l 8
`;
}

export class DockerBackups extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly volume: docker.Volume;

  constructor(name: string, args: DockerBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:docker:Backups", name, {}, opts);
    const child = { parent: this };
    const { namePrefix, labels } = args.placement;
    const image = pullPinned("postgres", `${name}-image`, child);
    this.volume = new docker.Volume(
      `${name}-volume`,
      { name: `${namePrefix}-backups`, labels: labelList(labels) },
      child,
    );

    this.container = new docker.Container(
      name,
      {
        ...containerDefaults(args.placement, "backups"),
        ...WAIT_HEALTHY,
        // Healthy once a dump exists; the first one of a big database may take a while.
        waitTimeout: 900,
        name: `${namePrefix}-backups`,
        image: image.repoDigest,
        entrypoints: ["/bin/sh", "/usr/local/bin/inferstack-backup-entrypoint"],
        uploads: [
          { file: "/usr/local/bin/inferstack-backup", content: renderBackupScript(args), executable: true },
          {
            file: "/usr/local/bin/inferstack-backup-entrypoint",
            content: renderBackupEntrypoint(args),
            executable: true,
          },
        ],
        envs: [pulumi.interpolate`PGPASSWORD=${args.password}`, "TZ=UTC"],
        memory: args.memoryMiB,
        // Healthy while the newest dump is under 26 h old (a day plus slack for a slow run).
        healthcheck: {
          ...shellHealthcheck(
            `find ${DEFAULT_BACKUP_DIR} -name '${args.database}-*.dump' -mmin -1560 | grep -q .`,
            "10m",
          ),
          interval: "5m",
        },
        volumes: [{ volumeName: this.volume.name, containerPath: DEFAULT_BACKUP_DIR }],
        networksAdvanced: [{ name: args.network.name, aliases: ["backups"] }],
      },
      { ...child, ...REPLACE_IN_PLACE, dependsOn: opts?.dependsOn ?? [] },
    );
    this.registerOutputs({ containerName: this.container.name });
  }
}
