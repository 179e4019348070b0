/**
 * A Mermaid flowchart of a plan, for docs/tiers.md and `npm run plan -- --format mermaid`: one
 * subgraph per component, a node per resource that carries traffic or data (containers, services,
 * load balancers, databases, caches, hosts, gateways, file systems), and arrows in the direction
 * traffic flows, from what each resource's inputs address: another's id, ARN or endpoint as the
 * mocked cloud names them, or a container's host name, directly or through supporting resources
 * (task definitions, secret versions, target groups). Secrets are masked in place by the plan, so
 * connection strings keep their hosts. Everything is derived from the plan: the diagram follows the code.
 */

import { mockState } from "../../infra/offline/cloud-mocks.ts";
import type { Plan, PlanResource } from "./plan.ts";
import { shortType } from "./plan-format.ts";
import { flatten } from "./properties.ts";

const diagramTypes: Record<string, (r: PlanResource) => string> = {
  "docker:index/container:Container": (r) =>
    `container ${
      String(r.inputs.image ?? "")
        .split("@")[0]
        ?.split("/")
        .pop() ?? ""
    }`,
  "aws:ecs/service:Service": (r) => `ECS service ×${r.inputs.desiredCount ?? 1}`,
  "aws:lb/loadBalancer:LoadBalancer": (r) => (r.inputs.internal ? "internal LB" : "ALB (internet-facing)"),
  "aws:rds/instance:Instance": (r) => `RDS ${r.inputs.instanceClass}${r.inputs.multiAz ? " Multi-AZ" : ""}`,
  "aws:elasticache/replicationGroup:ReplicationGroup": (r) =>
    `ElastiCache ${r.inputs.numCacheClusters ?? 1}× ${r.inputs.nodeType}`,
  "aws:ec2/instance:Instance": (r) => `EC2 ${r.inputs.instanceType}`,
  "aws:ec2/natGateway:NatGateway": () => "NAT gateway",
  "aws:efs/fileSystem:FileSystem": () => "EFS",
  "aws:ecr/repository:Repository": () => "ECR repository",
  "aws:s3/bucketV2:BucketV2": () => "S3 bucket",
  "aws:s3/bucket:Bucket": () => "S3 bucket",
  "aws:route53/record:Record": (r) => `DNS ${r.inputs.name ?? ""}`,
};

/** Certificate validation records are plumbing, not part of the picture. */
const isDiagramNode = (r: PlanResource) =>
  !r.component && r.type in diagramTypes && !String(r.inputs.name ?? "").startsWith("_");

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const label = (s: string) => s.replace(/"/g, "'");

/**
 * The names the mocked cloud gives `r` (infra/offline/cloud-mocks.ts, the same mock that made the
 * plan): its id and ARN, which other resources quote whole, and its endpoints (host names), which
 * they quote inside URLs and connection strings.
 */
function mockIdentity(r: PlanResource): { tokens: string[]; hosts: string[] } {
  const { id, state } = mockState({ type: r.type, name: r.name, inputs: r.inputs, custom: true });
  const tokens = [id];
  const hosts: string[] = [];
  for (const [key, v] of Object.entries(state)) {
    if (typeof v !== "string" || key in r.inputs) continue;
    if (key === "arn") tokens.push(v);
    else if (/^[a-z0-9-]+(\.[a-z0-9-]+)+\.amazonaws\.com(:\d+)?(\/.*)?$/i.test(v)) hosts.push(v.replace(/:\d+$/, "")); // with its path: ECR repositories share one host
  }
  return { tokens, hosts };
}

/** DNS names a container answers to on its networks: name, hostname, network aliases. */
function containerHostNames(r: PlanResource): string[] {
  const names = new Set<string>();
  for (const n of [r.inputs.name, r.inputs.hostname]) if (typeof n === "string" && n) names.add(n);
  for (const net of (r.inputs.networksAdvanced ?? []) as { aliases?: string[] }[])
    for (const a of net.aliases ?? []) names.add(a);
  return [...names];
}

/**
 * How a container is addressed in another's configuration: `host:port`, a URL's host, `-h host`
 * (libpq tools), or a YAML list item naming it (Prometheus `dns_sd_configs` names).
 */
function hostPattern(names: string[]): RegExp | undefined {
  if (!names.length) return undefined;
  const n = names.map(escapeRe).join("|");
  return new RegExp(
    `(^|[\\s"'=,@/(\\[])(${n}):\\d{2,5}(?![\\w.])|://([^/@\\s]*@)?(${n})([:/]|$)|(^|\\s)-h\\s+(${n})(\\s|$)|^\\s*-\\s+(${n})\\s*$`,
    "m",
  );
}

// Where a container names its networks, image, or itself: never a connection to another container.
const NOT_A_CONNECTION =
  /^(networksAdvanced\[\d+\]\.(name|aliases\[\d+\])|image|name|hostname|labels\b.*|volumes\b.*|mounts\b.*)$/;

function strings(r: PlanResource): [path: string, value: string][] {
  return Object.entries(flatten(r.inputs)).filter((e): e is [string, string] => typeof e[1] === "string");
}

/**
 * Who connects to whom, in the direction traffic flows: `[from, to]` where `from`'s inputs address
 * `to` (an endpoint, ARN or container host name), directly or through up to three supporting
 * resources (service → task definition → secret version → cache endpoint); a load balancer
 * sends traffic to the services registered in the target groups its listeners forward to.
 * Nodes are plan ids (`type::name`), so resources sharing a name stay apart.
 */
export function diagramEdges(plan: Plan): [string, string][] {
  const key = plan.resources.filter(isDiagramNode);
  const keyIds = new Set(key.map((r) => r.id));
  const custom = plan.resources.filter((r) => !r.component && !r.type.startsWith("pulumi:providers:"));
  const byToken = new Map<string, PlanResource[]>();
  const byHost: [RegExp, PlanResource][] = [];
  for (const r of custom) {
    const { tokens, hosts } = mockIdentity(r);
    for (const t of tokens) byToken.set(t, [...(byToken.get(t) ?? []), r]);
    for (const h of hosts) byHost.push([new RegExp(`(^|[^a-z0-9.-])${escapeRe(h)}($|[^a-z0-9./-])`, "i"), r]);
  }
  const containers = custom
    .filter((r) => r.type === "docker:index/container:Container")
    .map((r) => [hostPattern(containerHostNames(r)), r] as const);
  /** What `from`'s inputs address. An id shared by two resources (a VPC and a load balancer both
   *  named like the stack) is resolved by the property naming it (`vpcId` → the VPC), else dropped. */
  const addressed = (from: PlanResource): PlanResource[] => {
    const found = new Set<PlanResource>();
    for (const [path, v] of strings(from)) {
      const whole = byToken.get(v) ?? byToken.get(v.replace(/(:[A-Za-z0-9_]*::?)$/, "")) ?? [];
      const field = (path.split(".").pop() ?? "")
        .replace(/\[\d+\]$/, "")
        .replace(/(Ids?|Arns?|s)$/, "")
        .toLowerCase();
      const kind = (r: PlanResource) => (r.type.split(":").pop() ?? "").toLowerCase();
      const exact = whole.filter((r) => kind(r) === field);
      const hinted =
        whole.length <= 1
          ? whole
          : exact.length
            ? exact
            : whole.filter((r) => field.length > 2 && (kind(r).includes(field) || field.includes(kind(r))));
      if (hinted.length === 1) found.add(hinted[0]!);
      for (const [re, r] of byHost) if (re.test(v)) found.add(r);
      if (!NOT_A_CONNECTION.test(path)) for (const [re, r] of containers) if (re?.test(v)) found.add(r);
    }
    found.delete(from);
    return [...found];
  };
  const referenced = new Map<string, PlanResource[]>();
  const out = (r: PlanResource) => {
    if (!referenced.has(r.id)) referenced.set(r.id, addressed(r));
    return referenced.get(r.id)!;
  };
  const refs = (from: PlanResource, to: PlanResource) => out(from).includes(to);

  const edges = new Set<string>();
  for (const a of key) {
    const seen = new Set([a.id]);
    let frontier = [a];
    for (let depth = 0; depth < 3 && frontier.length; depth++) {
      const next: PlanResource[] = [];
      for (const x of frontier) {
        for (const b of out(x)) {
          if (seen.has(b.id)) continue;
          seen.add(b.id);
          if (keyIds.has(b.id)) edges.add(`${a.id}\u0000${b.id}`);
          else next.push(b);
        }
      }
      frontier = next;
    }
  }

  // Load balancer → service: a listener (or a rule on one) of the LB forwards to a target group the service registers in.
  const byId = new Map(custom.map((r) => [r.id, r]));
  const isType = (t: string) => (r: PlanResource) => r.type === t;
  const listeners = custom.filter(isType("aws:lb/listener:Listener"));
  const rules = custom.filter(isType("aws:lb/listenerRule:ListenerRule"));
  for (const svc of key.filter(isType("aws:ecs/service:Service"))) {
    for (const tg of out(svc).filter(isType("aws:lb/targetGroup:TargetGroup"))) {
      const forwarding = [...listeners, ...rules].filter((l) => refs(l, tg));
      for (const l of forwarding) {
        const viaListener =
          l.type === "aws:lb/listenerRule:ListenerRule" ? out(l).filter(isType("aws:lb/listener:Listener")) : [l];
        for (const lst of viaListener)
          for (const lb of out(lst).filter(isType("aws:lb/loadBalancer:LoadBalancer")))
            edges.add(`${lb.id}\u0000${svc.id}`);
      }
    }
  }
  // Egress: a service or host in a subnet whose route table sends traffic to a NAT gateway goes out through it.
  const associations = custom.filter(isType("aws:ec2/routeTableAssociation:RouteTableAssociation"));
  for (const k of key.filter((r) => r.type === "aws:ecs/service:Service" || r.type === "aws:ec2/instance:Instance")) {
    for (const subnet of out(k).filter(isType("aws:ec2/subnet:Subnet"))) {
      for (const assoc of associations.filter((x) => refs(x, subnet))) {
        for (const table of out(assoc).filter(isType("aws:ec2/routeTable:RouteTable"))) {
          for (const nat of out(table).filter(isType("aws:ec2/natGateway:NatGateway")))
            edges.add(`${k.id}\u0000${nat.id}`);
        }
      }
    }
  }
  // What the firewall lets through: a security group rule between two groups is traffic from the
  // resources in one to the resources in the other (Prometheus → app, app → RDS, ALB → app).
  const isGroup = isType("aws:ec2/securityGroup:SecurityGroup");
  const members = new Map<string, Set<PlanResource>>();
  const join = (group: PlanResource, r: PlanResource) =>
    members.set(group.id, (members.get(group.id) ?? new Set()).add(r));
  for (const k of key) for (const g of out(k).filter(isGroup)) join(g, k);
  // EFS sits in its groups through its mount targets.
  for (const mt of custom.filter(isType("aws:efs/mountTarget:MountTarget"))) {
    for (const fs of out(mt).filter((r) => keyIds.has(r.id))) for (const g of out(mt).filter(isGroup)) join(g, fs);
  }
  const groupAt = (rule: PlanResource, field: string): PlanResource | undefined => {
    const v = rule.inputs[field];
    const found = typeof v === "string" ? (byToken.get(v) ?? []).filter(isGroup) : [];
    return found.length === 1 ? found[0] : undefined;
  };
  for (const rule of custom.filter(
    (r) =>
      r.type === "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" ||
      r.type === "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  )) {
    const own = groupAt(rule, "securityGroupId");
    const peer = groupAt(rule, "referencedSecurityGroupId");
    if (!own || !peer) continue;
    const [from, to] = rule.type.includes("Ingress") ? [peer, own] : [own, peer];
    for (const a of members.get(from.id) ?? [])
      for (const b of members.get(to.id) ?? []) if (a.id !== b.id) edges.add(`${a.id}\u0000${b.id}`);
  }
  // A service never sends traffic to its own load balancer: drop edges the ARN walk found backwards.
  for (const e of [...edges]) {
    const [a, b] = e.split("\u0000") as [string, string];
    if (byId.get(b)?.type === "aws:lb/loadBalancer:LoadBalancer" && byId.get(a)?.type === "aws:ecs/service:Service")
      edges.delete(e);
  }
  return [...edges].map((e) => e.split("\u0000") as [string, string]).sort((x, y) => (x.join() < y.join() ? -1 : 1));
}

function isPublicEntry(r: PlanResource): boolean {
  if (r.type === "aws:lb/loadBalancer:LoadBalancer") return r.inputs.internal !== true;
  if (r.type === "docker:index/container:Container") {
    const ports = (r.inputs.ports ?? []) as { external?: number; ip?: string }[];
    return ports.some((p) => p.external === 80 || p.external === 443 || p.external === 8443 || p.external === 8080);
  }
  if (r.type === "aws:ec2/instance:Instance") return r.inputs.associatePublicIpAddress === true;
  return false;
}

export function formatMermaid(plan: Plan): string {
  const ids = new Map<string, string>();
  const nodeId = (id: string) => {
    if (!ids.has(id)) ids.set(id, `n${ids.size}`);
    return ids.get(id)!;
  };
  const lines = ["flowchart LR", '  internet(("Internet"))'];
  const key = plan.resources.filter(isDiagramNode);
  const byParent = new Map<string, PlanResource[]>();
  for (const r of key) byParent.set(r.parent ?? "", [...(byParent.get(r.parent ?? "") ?? []), r]);
  const components = new Map(plan.resources.filter((r) => r.component).map((r) => [r.id, r]));
  for (const [parent, members] of [...byParent.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const comp = components.get(parent);
    const indent = comp ? "    " : "  ";
    if (comp) lines.push(`  subgraph ${nodeId(comp.id)}["${label(`${comp.name} (${shortType(comp.type)})`)}"]`);
    for (const r of members)
      lines.push(`${indent}${nodeId(r.id)}["${label(`${r.name}<br/>${diagramTypes[r.type]!(r)}`)}"]`);
    if (comp) lines.push("  end");
  }
  for (const r of key) if (isPublicEntry(r)) lines.push(`  internet --> ${nodeId(r.id)}`);
  for (const [a, b] of diagramEdges(plan)) lines.push(`  ${nodeId(a)} --> ${nodeId(b)}`);
  return lines.join("\n");
}
