/**
 * AwsCluster: the ECS cluster and the private DNS namespace its services register in.
 *
 * Creates: an ECS cluster (Fargate + Fargate Spot capacity providers, Fargate by default;
 * Container Insights on or off) and a Cloud Map private DNS namespace (`namespaceName`, e.g.
 * `staging.inferstack.internal`) in the VPC, so Prometheus discovers the app tasks by DNS
 * (`app.<namespace>` A records, one per running task) and Grafana reaches Prometheus by name.
 *
 * Inputs:
 * - `clusterName`: ECS cluster name (≤ 255 chars).
 * - `containerInsights`: per-task CPU, memory and network metrics in CloudWatch.
 * - `vpcId`, `namespaceName`: the VPC and the private DNS domain to create in it.
 *
 * Cost: the cluster is free; Container Insights ~$0.07 per task-month of custom metrics plus
 * log ingestion; the Cloud Map namespace creates a Route 53 private zone ($0.50/month) and
 * $0.10 per registered instance-month beyond the free tier.
 */

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface AwsClusterArgs {
  clusterName: string;
  containerInsights: boolean;
  vpcId: pulumi.Input<string>;
  namespaceName: string;
}

export class AwsCluster extends pulumi.ComponentResource {
  readonly clusterArn: pulumi.Output<string>;
  readonly clusterName: pulumi.Output<string>;
  readonly namespaceId: pulumi.Output<string>;
  readonly namespaceName: string;

  constructor(name: string, args: AwsClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("inferstack:aws:Cluster", name, {}, opts);
    const parent = { parent: this };

    const cluster = new aws.ecs.Cluster(
      name,
      {
        name: args.clusterName,
        settings: [{ name: "containerInsights", value: args.containerInsights ? "enabled" : "disabled" }],
      },
      parent,
    );
    new aws.ecs.ClusterCapacityProviders(
      name,
      {
        clusterName: cluster.name,
        capacityProviders: ["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategies: [{ capacityProvider: "FARGATE", weight: 1, base: 0 }],
      },
      parent,
    );

    const namespace = new aws.servicediscovery.PrivateDnsNamespace(
      name,
      {
        name: args.namespaceName,
        vpc: args.vpcId,
        description: "Service discovery for the InferStack tasks",
      },
      parent,
    );

    this.clusterArn = cluster.arn;
    this.clusterName = cluster.name;
    this.namespaceId = namespace.id;
    this.namespaceName = args.namespaceName;
    this.registerOutputs({ clusterArn: this.clusterArn, namespaceId: this.namespaceId });
  }
}
