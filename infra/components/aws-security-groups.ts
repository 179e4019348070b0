/**
 * AwsSecurityGroups: the firewall chain ALB → app → Postgres/Redis, plus monitoring and EFS.
 *
 * Creates one security group per role and one rule resource per allowed flow (separate rule
 * resources, so groups can reference each other without a cycle and a changed rule is replaced
 * alone). Nothing is open to the world except the ALB's HTTP/HTTPS ports; every other ingress
 * names the security group it comes from.
 *
 * | group      | ingress from                                   | egress to                           |
 * |------------|------------------------------------------------|-------------------------------------|
 * | alb        | 0.0.0.0/0 on 80, 443 (IPv4, as the ALB)       | app:appPort, monitoring:grafanaPort |
 * | app        | alb + monitoring on appPort                    | postgres:5432, redis:6379, 443 (AWS APIs, ECR) |
 * | monitoring | alb on grafanaPort; itself on prometheus/alertmanager | app:appPort, postgres, redis (exporters), efs:2049, itself, 443 |
 * | postgres   | app + monitoring (postgres exporter) on 5432   | nothing                             |
 * | redis      | app + monitoring (redis exporter) on 6379      | nothing                             |
 * | efs        | monitoring on 2049                             | nothing                             |
 *
 * Inputs: `vpcId`; `appPort` (the API container port), `grafanaPort`, `prometheusPort`,
 * `alertmanagerPort` (the monitoring containers' ports).
 *
 * Cost: free.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface AwsSecurityGroupsArgs {
  vpcId: pulumi.Input<string>;
  appPort: number;
  grafanaPort: number;
  prometheusPort: number;
  alertmanagerPort: number;
}

export class AwsSecurityGroups extends pulumi.ComponentResource {
  readonly albId: pulumi.Output<string>;
  readonly appId: pulumi.Output<string>;
  readonly monitoringId: pulumi.Output<string>;
  readonly postgresId: pulumi.Output<string>;
  readonly redisId: pulumi.Output<string>;
  readonly efsId: pulumi.Output<string>;

  constructor(name: string, args: AwsSecurityGroupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:SecurityGroups", name, {}, opts);
    const parent = { parent: this };
    const group = (role: string, description: string) =>
      new aws.ec2.SecurityGroup(
        `${name}-${role}`,
        { vpcId: args.vpcId, description, tags: { Name: `${name}-${role}` } },
        parent,
      );

    const alb = group("alb", "Load balancer: HTTP/HTTPS from the internet");
    const app = group("app", "Inference API tasks: from the load balancer and Prometheus");
    const monitoring = group("monitoring", "Prometheus, Alertmanager and Grafana tasks");
    const postgres = group("postgres", "RDS Postgres: from the API tasks only");
    const redis = group("redis", "ElastiCache Redis: from the API tasks only");
    const efs = group("efs", "EFS mount targets: from the monitoring tasks only");

    const tcp = (port: number) => ({ ipProtocol: "tcp", fromPort: port, toPort: port });
    const ingress = (
      id: string,
      to: aws.ec2.SecurityGroup,
      port: number,
      from: { sg?: aws.ec2.SecurityGroup; cidr4?: string; cidr6?: string },
      description: string,
    ) =>
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-${id}`,
        {
          securityGroupId: to.id,
          description,
          ...tcp(port),
          ...(from.sg ? { referencedSecurityGroupId: from.sg.id } : {}),
          ...(from.cidr4 ? { cidrIpv4: from.cidr4 } : {}),
          ...(from.cidr6 ? { cidrIpv6: from.cidr6 } : {}),
        },
        parent,
      );
    const egress = (
      id: string,
      from: aws.ec2.SecurityGroup,
      port: number,
      to: { sg?: aws.ec2.SecurityGroup; cidr4?: string },
      description: string,
    ) =>
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-${id}`,
        {
          securityGroupId: from.id,
          description,
          ...tcp(port),
          ...(to.sg ? { referencedSecurityGroupId: to.sg.id } : {}),
          ...(to.cidr4 ? { cidrIpv4: to.cidr4 } : {}),
        },
        parent,
      );

    // IPv4 only, like the ALB (ipAddressType ipv4) and its alias A records: an IPv6 rule would open nothing reachable.
    for (const port of [80, 443]) {
      ingress(
        `alb-in-${port}-v4`,
        alb,
        port,
        { cidr4: "0.0.0.0/0" },
        `Public ${port === 443 ? "HTTPS" : "HTTP (redirected to HTTPS)"}`,
      );
    }
    egress("alb-out-app", alb, args.appPort, { sg: app }, "Forward to the API tasks");
    egress("alb-out-grafana", alb, args.grafanaPort, { sg: monitoring }, "Forward to Grafana");

    ingress("app-in-alb", app, args.appPort, { sg: alb }, "Requests from the load balancer");
    ingress("app-in-prometheus", app, args.appPort, { sg: monitoring }, "Prometheus scrapes /metrics");
    egress("app-out-postgres", app, 5432, { sg: postgres }, "Postgres");
    egress("app-out-redis", app, 6379, { sg: redis }, "Redis");
    // ECR, Secrets Manager and CloudWatch Logs are HTTPS APIs reached via the NAT or VPC endpoints.
    egress("app-out-https", app, 443, { cidr4: "0.0.0.0/0" }, "AWS APIs (ECR, Secrets Manager, CloudWatch Logs)");

    ingress("monitoring-in-grafana", monitoring, args.grafanaPort, { sg: alb }, "Grafana through the load balancer");
    ingress(
      "monitoring-in-prometheus",
      monitoring,
      args.prometheusPort,
      { sg: monitoring },
      "Grafana queries Prometheus",
    );
    ingress(
      "monitoring-in-alertmanager",
      monitoring,
      args.alertmanagerPort,
      { sg: monitoring },
      "Prometheus sends alerts",
    );
    egress("monitoring-out-app", monitoring, args.appPort, { sg: app }, "Scrape the API tasks");
    egress(
      "monitoring-out-prometheus",
      monitoring,
      args.prometheusPort,
      { sg: monitoring },
      "Grafana queries Prometheus",
    );
    egress(
      "monitoring-out-alertmanager",
      monitoring,
      args.alertmanagerPort,
      { sg: monitoring },
      "Prometheus sends alerts",
    );
    egress("monitoring-out-postgres", monitoring, 5432, { sg: postgres }, "postgres-exporter");
    egress("monitoring-out-redis", monitoring, 6379, { sg: redis }, "redis-exporter");
    egress("monitoring-out-efs", monitoring, 2049, { sg: efs }, "NFS to the EFS volumes");
    // Alert receivers (Slack, PagerDuty, webhooks) and AWS APIs.
    egress("monitoring-out-https", monitoring, 443, { cidr4: "0.0.0.0/0" }, "Alert receivers and AWS APIs");

    ingress("postgres-in-app", postgres, 5432, { sg: app }, "The API tasks");
    ingress("postgres-in-monitoring", postgres, 5432, { sg: monitoring }, "postgres-exporter");
    ingress("redis-in-app", redis, 6379, { sg: app }, "The API tasks");
    ingress("redis-in-monitoring", redis, 6379, { sg: monitoring }, "redis-exporter");
    ingress("efs-in-monitoring", efs, 2049, { sg: monitoring }, "The monitoring tasks");

    this.albId = alb.id;
    this.appId = app.id;
    this.monitoringId = monitoring.id;
    this.postgresId = postgres.id;
    this.redisId = redis.id;
    this.efsId = efs.id;
    this.registerOutputs({ albId: this.albId, appId: this.appId, monitoringId: this.monitoringId });
  }
}
