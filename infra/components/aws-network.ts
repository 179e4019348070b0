/**
 * AwsNetwork: the VPC the AWS tiers run in.
 *
 * Creates: a VPC (DNS support + host names on, needed by VPC endpoints and Cloud Map); one public
 * and one private subnet in each of `azCount` distinct availability zones; an internet gateway;
 * NAT gateways (one shared, or one per AZ so an AZ loss cannot cut the others' egress) with their
 * Elastic IPs; route tables; the free S3 gateway endpoint (ECR image layers are served from S3);
 * optionally interface endpoints for ECR, CloudWatch Logs and Secrets Manager; optionally VPC
 * flow logs to CloudWatch Logs. The default security group is emptied (no rules) so nothing
 * lands in it by accident.
 *
 * Inputs:
 * - `cidr`: the VPC's IPv4 block (a /16 to /24); subnets are carved from it with 4 more bits.
 * - `azCount`: how many AZs (2..6); the region must have that many available.
 * - `natGateways`: `single` (one NAT for all AZs: cheaper, AZ-fragile) or `perAz`.
 * - `interfaceEndpoints`: create the ECR/Logs/Secrets Manager interface endpoints.
 * - `flowLogs`: record ALL traffic metadata to a CloudWatch log group.
 * - `logRetentionDays`: retention of the flow log group.
 *
 * Cost (us-east-1): NAT gateway ~$32.85/month each + $0.045/GB processed; Elastic IP $3.65/month
 * each; interface endpoints ~$7.30/month per endpoint per AZ + $0.01/GB; flow logs are billed as
 * CloudWatch Logs ingestion ($0.50/GB). VPC, subnets, routes and the S3 gateway endpoint are free.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface AwsNetworkArgs {
  cidr: string;
  azCount: number;
  natGateways: "single" | "perAz";
  interfaceEndpoints: boolean;
  flowLogs: boolean;
  logRetentionDays: number;
}

/** Interface endpoints that carry a Fargate task's control traffic off the NAT. */
export const interfaceEndpointServices = ["ecr.api", "ecr.dkr", "logs", "secretsmanager"] as const;

/** The `index`-th subnet of `cidr` that is `newBits` longer (Terraform's cidrsubnet). */
export function subnetCidr(cidr: string, newBits: number, index: number): string {
  const [base, prefixText] = cidr.split("/");
  const prefix = Number(prefixText);
  const octets = (base ?? "").split(".").map(Number);
  const newPrefix = prefix + newBits;
  if (newPrefix > 28)
    throw new Error(`${cidr} is too small to split into /${newPrefix} subnets (AWS subnets are /16 to /28)`);
  if (index >= 2 ** newBits)
    throw new Error(`${cidr} has only ${2 ** newBits} /${newPrefix} subnets (asked for #${index})`);
  const address = octets.reduce((acc, o) => acc * 256 + (o ?? 0), 0);
  const network = address - (address % 2 ** (32 - prefix));
  const start = network + index * 2 ** (32 - newPrefix);
  const parts = [24, 16, 8, 0].map((shift) => Math.floor(start / 2 ** shift) % 256);
  return `${parts.join(".")}/${newPrefix}`;
}

export class AwsNetwork extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly vpcCidr: string;
  readonly availabilityZones: pulumi.Output<string>[];
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateSubnetIds: pulumi.Output<string>[];

  constructor(name: string, args: AwsNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Network", name, {}, opts);
    const parent = { parent: this };
    this.vpcCidr = args.cidr;

    const vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      {
        cidrBlock: args.cidr,
        enableDnsSupport: true,
        enableDnsHostnames: true,
        tags: { Name: name },
      },
      parent,
    );
    this.vpcId = vpc.id;

    // No rules: resources must name the group they belong to.
    new aws.ec2.DefaultSecurityGroup(`${name}-default-sg`, { vpcId: vpc.id, ingress: [], egress: [] }, parent);

    const zones = aws.getAvailabilityZonesOutput(
      { state: "available", filters: [{ name: "opt-in-status", values: ["opt-in-not-required"] }] },
      parent,
    );
    this.availabilityZones = Array.from({ length: args.azCount }, (_, i) =>
      zones.names.apply((names) => {
        const az = names[i];
        if (az === undefined)
          throw new Error(`network.azCount is ${args.azCount} but the region has only ${names.length} available AZs`);
        return az;
      }),
    );

    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: { Name: name } }, parent);
    const publicRoutes = new aws.ec2.RouteTable(
      `${name}-public`,
      {
        vpcId: vpc.id,
        routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }],
        tags: { Name: `${name}-public` },
      },
      parent,
    );

    // Public subnets take the low /20s, private ones start half way, leaving room for more AZs.
    const half = 2 ** 4 / 2;
    const publicSubnets = this.availabilityZones.map((az, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-public-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: az,
          cidrBlock: subnetCidr(args.cidr, 4, i),
          // Only the ALB and NAT gateways live here, and they get their own addresses.
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-public-${i}`, "inferstack:subnet": "public" },
        },
        parent,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-public-${i}`,
        { subnetId: subnet.id, routeTableId: publicRoutes.id },
        parent,
      );
      return subnet;
    });
    this.publicSubnetIds = publicSubnets.map((s) => s.id);

    const natCount = args.natGateways === "perAz" ? args.azCount : 1;
    const nats = Array.from({ length: natCount }, (_, i) => {
      const eip = new aws.ec2.Eip(`${name}-nat-${i}`, { domain: "vpc", tags: { Name: `${name}-nat-${i}` } }, parent);
      return new aws.ec2.NatGateway(
        `${name}-nat-${i}`,
        {
          allocationId: eip.id,
          subnetId: publicSubnets[i]!.id,
          connectivityType: "public",
          tags: { Name: `${name}-nat-${i}` },
        },
        { parent: this, dependsOn: [igw] },
      );
    });

    const privateRouteTables: aws.ec2.RouteTable[] = [];
    const privateSubnets = this.availabilityZones.map((az, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-private-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: az,
          cidrBlock: subnetCidr(args.cidr, 4, half + i),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-private-${i}`, "inferstack:subnet": "private" },
        },
        parent,
      );
      const routes = new aws.ec2.RouteTable(
        `${name}-private-${i}`,
        {
          vpcId: vpc.id,
          routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nats[Math.min(i, natCount - 1)]!.id }],
          tags: { Name: `${name}-private-${i}` },
        },
        parent,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-private-${i}`,
        { subnetId: subnet.id, routeTableId: routes.id },
        parent,
      );
      privateRouteTables.push(routes);
      return subnet;
    });
    this.privateSubnetIds = privateSubnets.map((s) => s.id);

    const region = aws.getRegionOutput({}, parent);
    new aws.ec2.VpcEndpoint(
      `${name}-s3`,
      {
        vpcId: vpc.id,
        serviceName: pulumi.interpolate`com.amazonaws.${region.region}.s3`,
        vpcEndpointType: "Gateway",
        routeTableIds: privateRouteTables.map((r) => r.id),
        tags: { Name: `${name}-s3` },
      },
      parent,
    );

    if (args.interfaceEndpoints) {
      const endpointsSg = new aws.ec2.SecurityGroup(
        `${name}-endpoints`,
        {
          vpcId: vpc.id,
          description: "VPC interface endpoints: HTTPS from inside the VPC only",
          tags: { Name: `${name}-endpoints` },
        },
        parent,
      );
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-endpoints-https`,
        {
          securityGroupId: endpointsSg.id,
          description: "HTTPS from the VPC",
          ipProtocol: "tcp",
          fromPort: 443,
          toPort: 443,
          cidrIpv4: args.cidr,
        },
        parent,
      );
      for (const service of interfaceEndpointServices) {
        new aws.ec2.VpcEndpoint(
          `${name}-${service.replace(".", "-")}`,
          {
            vpcId: vpc.id,
            serviceName: pulumi.interpolate`com.amazonaws.${region.region}.${service}`,
            vpcEndpointType: "Interface",
            privateDnsEnabled: true,
            subnetIds: this.privateSubnetIds,
            securityGroupIds: [endpointsSg.id],
            tags: { Name: `${name}-${service}` },
          },
          parent,
        );
      }
    }

    if (args.flowLogs) {
      const logGroup = new aws.cloudwatch.LogGroup(
        `${name}-flow-logs`,
        { retentionInDays: args.logRetentionDays },
        parent,
      );
      const role = new aws.iam.Role(
        `${name}-flow-logs`,
        {
          assumeRolePolicy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Principal: { Service: "vpc-flow-logs.amazonaws.com" }, Action: "sts:AssumeRole" },
            ],
          }),
        },
        parent,
      );
      new aws.iam.RolePolicy(
        `${name}-flow-logs`,
        {
          role: role.id,
          policy: logGroup.arn.apply((arn) =>
            JSON.stringify({
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Allow",
                  Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                  Resource: [arn, `${arn}:*`],
                },
              ],
            }),
          ),
        },
        parent,
      );
      new aws.ec2.FlowLog(
        `${name}-flow-logs`,
        {
          vpcId: vpc.id,
          trafficType: "ALL",
          logDestinationType: "cloud-watch-logs",
          logDestination: logGroup.arn,
          iamRoleArn: role.arn,
          maxAggregationInterval: 60,
        },
        parent,
      );
    }

    this.registerOutputs({
      vpcId: this.vpcId,
      publicSubnetIds: this.publicSubnetIds,
      privateSubnetIds: this.privateSubnetIds,
    });
  }
}
