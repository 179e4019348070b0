/**
 * The CPU/memory combinations AWS Fargate accepts (Linux tasks). A task definition with any other
 * pair is rejected at `pulumi up` time, long after preview; the config schema validates presets
 * against this table so a bad pair fails before any resource is declared.
 * Source: the ECS developer guide, "Task CPU and memory" (Fargate).
 */

/** Task CPU units (1024 = 1 vCPU) → the memory sizes (MiB) allowed with it. */
export const fargateMemoryByCpu: ReadonlyMap<number, readonly number[]> = new Map([
  [256, [512, 1024, 2048]],
  [512, range(1024, 4096, 1024)],
  [1024, range(2048, 8192, 1024)],
  [2048, range(4096, 16384, 1024)],
  [4096, range(8192, 30720, 1024)],
  [8192, range(16384, 61440, 4096)],
  [16384, range(32768, 122880, 8192)],
]);

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

export interface FargateSize {
  /** CPU units, as the task definition's `cpu` string wants them. */
  cpu: number;
  memoryMiB: number;
}

/** vCPU (0.25, 0.5, 1, ...) → CPU units; undefined when Fargate has no such size. */
export function fargateCpuUnits(vcpu: number): number | undefined {
  const units = Math.round(vcpu * 1024);
  return fargateMemoryByCpu.has(units) && Math.abs(units - vcpu * 1024) < 1e-9 ? units : undefined;
}

/** Why `vcpu` + `memoryMiB` is not a Fargate size, or null when it is one. */
export function fargatePairProblem(vcpu: number, memoryMiB: number): string | null {
  const units = fargateCpuUnits(vcpu);
  if (units === undefined) return `${vcpu} vCPU is not a Fargate size (use 0.25, 0.5, 1, 2, 4, 8 or 16)`;
  const allowed = fargateMemoryByCpu.get(units) ?? [];
  if (allowed.includes(memoryMiB)) return null;
  const first = allowed[0];
  const last = allowed[allowed.length - 1];
  const step = allowed.length > 1 ? (allowed[1] ?? 0) - (first ?? 0) : 0;
  return `${memoryMiB} MiB is not valid with ${vcpu} vCPU on Fargate (allowed: ${allowed.length <= 3 ? allowed.join(", ") : `${first}–${last} in steps of ${step}`})`;
}

/** The smallest (cheapest) Fargate size with at least `minCpuUnits` and `minMemoryMiB`. */
export function smallestFargateSize(minCpuUnits: number, minMemoryMiB: number): FargateSize {
  for (const [cpu, memories] of fargateMemoryByCpu) {
    if (cpu < minCpuUnits) continue;
    const memoryMiB = memories.find((m) => m >= minMemoryMiB);
    if (memoryMiB !== undefined) return { cpu, memoryMiB };
  }
  throw new Error(`no Fargate size has ${minCpuUnits} CPU units and ${minMemoryMiB} MiB`);
}
