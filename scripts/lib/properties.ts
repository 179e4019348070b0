/**
 * Flattens resource inputs into `path → value` pairs (JSON strings such as container definitions
 * and policies are opened up), and picks the properties worth showing in a plan: sizes, counts,
 * Multi-AZ, encryption, exposure, retention, images.
 */
export type Flat = Record<string, string | number | boolean | null>;

function parseJsonString(v: string): unknown {
  const t = v.trimStart();
  if (!(t.startsWith("{") || t.startsWith("["))) return undefined;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}

export function flatten(value: unknown, path = "", out: Flat = {}): Flat {
  if (typeof value === "string") {
    const parsed = parseJsonString(value);
    if (parsed !== undefined && typeof parsed === "object" && parsed !== null) return flatten(parsed, path, out);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) out[path] = "[]";
    for (const [i, v] of value.entries()) flatten(v, `${path}[${i}]`, out);
  } else if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0 && path) out[path] = "{}";
    for (const [k, v] of entries) flatten(v, path ? `${path}.${k}` : k, out);
  } else if (value !== undefined) {
    out[path] = value as string | number | boolean | null;
  }
  return out;
}

const interesting =
  /(^|\.)(instanceType|instanceClass|nodeType|cpu|memory|memoryReservation|desiredCount|numCacheClusters|numCacheNodes|replicasPerNodeGroup|minCapacity|maxCapacity|multiAz|automaticFailoverEnabled|multiAzEnabled|allocatedStorage|maxAllocatedStorage|storageType|storageEncrypted|atRestEncryptionEnabled|transitEncryptionEnabled|encrypted|kmsKeyId|publiclyAccessible|internal|loadBalancerType|port|protocol|sslPolicy|certificateArn|deletionProtection|backupRetentionPeriod|snapshotRetentionLimit|retentionInDays|image|engine|engineVersion|launchType|cidrBlock|volumeSize|volumeType|httpTokens|assignPublicIp|associatePublicIpAddress|fromPort|toPort|cidrBlocks|restart|ports\[\d+\]\.(internal|external)|memorySwap|healthCheckGracePeriodSeconds|domainName|cpuArchitecture|scanOnPush|performanceInsightsEnabled|skipFinalSnapshot|containerInsights)$/;

/** Up to `limit` interesting properties, in path order; long values are shortened. */
export function keyProperties(inputs: Record<string, unknown>, limit = 12): [string, string][] {
  const flat = flatten(inputs);
  const picked: [string, string][] = [];
  for (const [path, v] of Object.entries(flat).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!interesting.test(path) || path.startsWith("tags")) continue;
    const text = typeof v === "string" ? v : JSON.stringify(v);
    picked.push([path, text.length > 72 ? `${text.slice(0, 69)}...` : text]);
    if (picked.length >= limit) break;
  }
  return picked;
}
