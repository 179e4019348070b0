/**
 * AwsLoadBalancer: the public entry point — ALB, TLS certificate, DNS.
 *
 * Creates: an internet-facing Application Load Balancer in the public subnets (drops invalid
 * header fields, HTTP/2, deletion protection when asked); an ACM certificate for `domain` and
 * `grafanaDomain`, DNS-validated with records in the Route 53 zone `zoneName`; target groups
 * (IP targets, for Fargate) for the API (health check `appHealthPath`) and for Grafana
 * (`/api/health`), each with a deregistration delay of the app's graceful shutdown plus a
 * margin so in-flight requests finish before a task is stopped; an HTTPS:443 listener with the
 * TLS 1.3/1.2 policy whose default answer is a fixed JSON 404; rules (priorities unique, each
 * within the ALB's 3 values per condition and 5 per rule) that refuse any path with a dot
 * segment, send `grafanaDomain` to Grafana (but not Grafana's own /metrics), and forward only the API's public routes on `domain`
 * (`publicApiPathGroups`: /v1/*, /v2, /v2/*, /openapi.json, /docs, /docs/*) to the API, so
 * /metrics and /health/* are never reachable from the internet; an HTTP:80 listener that only redirects to HTTPS (301); Route 53 alias A records for
 * both names; a CloudWatch alarm on the API's 5xx rate (metric math over the target group) that
 * the app service uses as a deployment rollback alarm. With `accessLogs`, an S3 bucket (SSE-S3, public access blocked, owner-enforced,
 * TLS-only, expiring after `logRetentionDays`) that the regional ELB log-delivery account may
 * write to, and the ALB logging into it.
 *
 * Inputs:
 * - `albName`: ALB name, ≤ 32 chars (AWS limit); target groups use ≤ 6-char `namePrefix`es.
 * - `vpcId`, `publicSubnetIds` (≥ 2 AZs), `securityGroupId` (the ALB group).
 * - `domain`, `grafanaDomain`, `zoneName`: host names and the public hosted zone holding them.
 * - `appPort`, `appHealthPath`, `grafanaPort`: target ports and the API's readiness path.
 * - `deregistrationDelaySeconds`: how long a draining target keeps its in-flight requests.
 * - `accessLogs`, `logRetentionDays`, `deletionProtection`.
 *
 * Cost: ALB ~$16.43/month + ~$5.84 per LCU-month (listener rules are free up to 100 per ALB;
 * each rule past the first 10 adds rule evaluations to the LCU, ours stay below); the alarm $0.30/month (3 metrics); the certificate is free; Route 53 records in
 * an existing zone are free for alias queries; access logs at S3 rates ($0.023/GB-month).
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface AwsLoadBalancerArgs {
  albName: string;
  vpcId: pulumi.Input<string>;
  publicSubnetIds: pulumi.Input<string>[];
  securityGroupId: pulumi.Input<string>;
  domain: string;
  grafanaDomain: string;
  zoneName: string;
  appPort: number;
  appHealthPath: string;
  grafanaPort: number;
  deregistrationDelaySeconds: number;
  accessLogs: boolean;
  logRetentionDays: number;
  deletionProtection: boolean;
}

/**
 * The API's public routes as ALB path patterns, grouped so each rule stays within the ALB's
 * limits: at most 3 values per condition and 5 per rule (the host header counts one). Everything
 * else (`/metrics`, `/health/*`) answers the listener's fixed 404; the target group's health check
 * and Prometheus reach the tasks inside the VPC without passing through listener rules.
 */
export const publicApiPathGroups: string[][] = [
  ["/v1/*", "/v2", "/v2/*"],
  ["/openapi.json", "/docs", "/docs/*"],
];

/** A `.` or `..` path segment, literal or percent-encoded (the WHATWG URL parser decodes `%2e`). */
export const dotSegmentPathRegex = "^(.*/)?(\\.|%2[eE]){1,2}(/.*)?$";
export const dotSegmentRulePriority = 1;

/** What the listener answers for anything not public; the same JSON error shape as the API's. */
const notFound: aws.types.input.lb.ListenerDefaultAction = {
  type: "fixed-response",
  fixedResponse: {
    statusCode: "404",
    contentType: "application/json",
    messageBody: JSON.stringify({ error: "not found" }),
  },
};

/** API 5xx share (percent) that rolls a deployment back. */
export const deployErrorRatePercent = 5;

/** TLS 1.3 with TLS 1.2 fallback, forward-secret ciphers only. */
export const httpsPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06";

export class AwsLoadBalancer extends pulumi.ComponentResource {
  readonly dnsName: pulumi.Output<string>;
  readonly arnSuffix: pulumi.Output<string>;
  readonly appTargetGroupArn: pulumi.Output<string>;
  readonly appTargetGroupArnSuffix: pulumi.Output<string>;
  readonly grafanaTargetGroupArn: pulumi.Output<string>;
  /** CloudWatch alarm on the API's 5xx rate, for ECS deployment rollback. */
  readonly appErrorAlarmName: pulumi.Output<string>;
  /** The HTTPS listener and Grafana rule: services must wait for them (a target group must be attached to a load balancer first). */
  readonly listeners: pulumi.Resource[];

  constructor(name: string, args: AwsLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:LoadBalancer", name, {}, opts);
    const parent = { parent: this };
    if (args.albName.length > 32)
      throw new Error(`ALB name "${args.albName}" is ${args.albName.length} characters (AWS allows 32)`);

    const zone = aws.route53.getZoneOutput({ name: args.zoneName, privateZone: false }, parent);

    const certificate = new aws.acm.Certificate(
      name,
      {
        domainName: args.domain,
        subjectAlternativeNames: [args.grafanaDomain],
        validationMethod: "DNS",
        keyAlgorithm: "EC_prime256v1",
      },
      { parent: this, deleteBeforeReplace: false },
    );
    const validationRecords = [args.domain, args.grafanaDomain].map((domain, i) => {
      const option = certificate.domainValidationOptions.apply((options) => {
        const match = options.find((o) => o.domainName === domain);
        if (!match) throw new Error(`ACM returned no DNS validation record for ${domain}`);
        return match;
      });
      return new aws.route53.Record(
        `${name}-validation-${i}`,
        {
          zoneId: zone.zoneId,
          name: option.resourceRecordName,
          type: option.resourceRecordType,
          records: [option.resourceRecordValue],
          ttl: 300,
          allowOverwrite: true,
        },
        parent,
      );
    });
    const validation = new aws.acm.CertificateValidation(
      name,
      {
        certificateArn: certificate.arn,
        validationRecordFqdns: validationRecords.map((r) => r.fqdn),
      },
      parent,
    );

    let accessLogs: aws.types.input.lb.LoadBalancerAccessLogs | undefined;
    const albDependsOn: pulumi.Resource[] = [];
    if (args.accessLogs) {
      const bucket = new aws.s3.Bucket(`${name}-logs`, { forceDestroy: false }, parent);
      const blocked = new aws.s3.BucketPublicAccessBlock(
        `${name}-logs`,
        {
          bucket: bucket.id,
          blockPublicAcls: true,
          blockPublicPolicy: true,
          ignorePublicAcls: true,
          restrictPublicBuckets: true,
        },
        parent,
      );
      new aws.s3.BucketOwnershipControls(
        `${name}-logs`,
        { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } },
        parent,
      );
      // ALB access logs support SSE-S3 only, not SSE-KMS.
      new aws.s3.BucketServerSideEncryptionConfiguration(
        `${name}-logs`,
        {
          bucket: bucket.id,
          rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
        },
        parent,
      );
      new aws.s3.BucketLifecycleConfiguration(
        `${name}-logs`,
        {
          bucket: bucket.id,
          rules: [
            {
              id: "expire-access-logs",
              status: "Enabled",
              filter: { prefix: "" },
              expiration: { days: args.logRetentionDays },
            },
          ],
        },
        parent,
      );
      const elbAccount = aws.elb.getServiceAccountOutput({}, parent);
      const caller = aws.getCallerIdentityOutput({}, parent);
      const policy = new aws.s3.BucketPolicy(
        `${name}-logs`,
        {
          bucket: bucket.id,
          policy: pulumi.all([bucket.arn, elbAccount.arn, caller.accountId]).apply(([arn, elbArn, account]) =>
            JSON.stringify({
              Version: "2012-10-17",
              Statement: [
                // Regions before Aug 2022 deliver from the regional ELB account, newer ones from the service principal.
                {
                  Sid: "ElbAccountWrites",
                  Effect: "Allow",
                  Principal: { AWS: elbArn },
                  Action: "s3:PutObject",
                  Resource: `${arn}/alb/AWSLogs/${account}/*`,
                },
                {
                  Sid: "LogDeliveryWrites",
                  Effect: "Allow",
                  Principal: { Service: "logdelivery.elasticloadbalancing.amazonaws.com" },
                  Action: "s3:PutObject",
                  Resource: `${arn}/alb/AWSLogs/${account}/*`,
                },
                {
                  Sid: "TlsOnly",
                  Effect: "Deny",
                  Principal: "*",
                  Action: "s3:*",
                  Resource: [arn, `${arn}/*`],
                  Condition: { Bool: { "aws:SecureTransport": "false" } },
                },
              ],
            }),
          ),
        },
        { parent: this, dependsOn: [blocked] },
      );
      accessLogs = { bucket: bucket.id, prefix: "alb", enabled: true };
      albDependsOn.push(policy);
    }

    const alb = new aws.lb.LoadBalancer(
      name,
      {
        name: args.albName,
        loadBalancerType: "application",
        internal: false,
        // The alias records are A only; the ALB security group opens IPv4 only to match.
        ipAddressType: "ipv4",
        securityGroups: [args.securityGroupId],
        subnets: args.publicSubnetIds,
        dropInvalidHeaderFields: true,
        enableHttp2: true,
        idleTimeout: 60,
        enableDeletionProtection: args.deletionProtection,
        ...(accessLogs ? { accessLogs } : {}),
      },
      { parent: this, dependsOn: albDependsOn },
    );

    const targetGroup = (role: string, prefix: string, port: number, path: string) =>
      new aws.lb.TargetGroup(
        `${name}-${role}`,
        {
          namePrefix: prefix,
          vpcId: args.vpcId,
          targetType: "ip",
          protocol: "HTTP",
          port,
          deregistrationDelay: args.deregistrationDelaySeconds,
          healthCheck: {
            enabled: true,
            path,
            protocol: "HTTP",
            matcher: "200",
            interval: 15,
            timeout: 5,
            healthyThreshold: 2,
            unhealthyThreshold: 3,
          },
        },
        parent,
      );
    const appTargets = targetGroup("app", "api-", args.appPort, args.appHealthPath);
    const grafanaTargets = targetGroup("grafana", "graf-", args.grafanaPort, "/api/health");

    new aws.lb.Listener(
      `${name}-http`,
      {
        loadBalancerArn: alb.arn,
        port: 80,
        protocol: "HTTP",
        defaultActions: [{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } }],
      },
      parent,
    );
    // Default deny: only the rules below reach a target, so a new app route stays internal until listed.
    const https = new aws.lb.Listener(
      `${name}-https`,
      {
        loadBalancerArn: alb.arn,
        port: 443,
        protocol: "HTTPS",
        sslPolicy: httpsPolicy,
        certificateArn: validation.certificateArn,
        defaultActions: [notFound],
      },
      parent,
    );
    const rules = [
      // The app resolves dot segments (`/v1/../metrics` is `/metrics` to it) after the ALB has matched
      // the raw path, so a path holding one is refused before any forwarding rule sees it.
      new aws.lb.ListenerRule(
        `${name}-dot-segments`,
        {
          listenerArn: https.arn,
          priority: dotSegmentRulePriority,
          conditions: [{ pathPattern: { regexValues: [dotSegmentPathRegex] } }],
          actions: [notFound],
        },
        parent,
      ),
      // Grafana serves its own process metrics at /metrics without a login.
      new aws.lb.ListenerRule(
        `${name}-grafana-metrics`,
        {
          listenerArn: https.arn,
          priority: 5,
          conditions: [
            { hostHeader: { values: [args.grafanaDomain] } },
            { pathPattern: { values: ["/metrics", "/metrics/*"] } },
          ],
          actions: [notFound],
        },
        parent,
      ),
      new aws.lb.ListenerRule(
        `${name}-grafana`,
        {
          listenerArn: https.arn,
          priority: 10,
          conditions: [{ hostHeader: { values: [args.grafanaDomain] } }],
          actions: [{ type: "forward", targetGroupArn: grafanaTargets.arn }],
        },
        parent,
      ),
      ...publicApiPathGroups.map(
        (paths, i) =>
          new aws.lb.ListenerRule(
            `${name}-api-${i}`,
            {
              listenerArn: https.arn,
              priority: 100 + 10 * i,
              conditions: [{ hostHeader: { values: [args.domain] } }, { pathPattern: { values: paths } }],
              actions: [{ type: "forward", targetGroupArn: appTargets.arn }],
            },
            parent,
          ),
      ),
    ];

    [args.domain, args.grafanaDomain].forEach((domain, i) => {
      new aws.route53.Record(
        `${name}-alias-${i}`,
        {
          zoneId: zone.zoneId,
          name: domain,
          type: "A",
          aliases: [{ name: alb.dnsName, zoneId: alb.zoneId, evaluateTargetHealth: true }],
        },
        parent,
      );
    });

    // Deployment guard: the circuit breaker catches tasks that never get healthy; this alarm
    // catches a release that is healthy but answers errors. ECS rolls back while it fires.
    const errorRate = new aws.cloudwatch.MetricAlarm(
      `${name}-app-5xx`,
      {
        alarmDescription: `More than ${deployErrorRatePercent}% of API requests answered 5xx (2 of 3 minutes, ≥ 20 requests/min)`,
        comparisonOperator: "GreaterThanThreshold",
        threshold: deployErrorRatePercent,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        treatMissingData: "notBreaching",
        metricQueries: [
          {
            id: "errors",
            metric: {
              namespace: "AWS/ApplicationELB",
              metricName: "HTTPCode_Target_5XX_Count",
              stat: "Sum",
              period: 60,
              dimensions: { LoadBalancer: alb.arnSuffix, TargetGroup: appTargets.arnSuffix },
            },
          },
          {
            id: "requests",
            metric: {
              namespace: "AWS/ApplicationELB",
              metricName: "RequestCount",
              stat: "Sum",
              period: 60,
              dimensions: { LoadBalancer: alb.arnSuffix, TargetGroup: appTargets.arnSuffix },
            },
          },
          {
            id: "rate",
            expression: "IF(FILL(requests, 0) >= 20, 100 * FILL(errors, 0) / requests, 0)",
            label: "5xx %",
            returnData: true,
          },
        ],
      },
      parent,
    );

    this.dnsName = alb.dnsName;
    this.appErrorAlarmName = errorRate.name;
    this.arnSuffix = alb.arnSuffix;
    this.appTargetGroupArn = appTargets.arn;
    this.appTargetGroupArnSuffix = appTargets.arnSuffix;
    this.grafanaTargetGroupArn = grafanaTargets.arn;
    this.listeners = [https, ...rules];
    this.registerOutputs({ dnsName: this.dnsName });
  }
}
