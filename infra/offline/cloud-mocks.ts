/**
 * What the mocked cloud answers: ids and the computed attributes our program reads
 * (endpoints, ARNs, digests), and the data-source invokes it calls. Values are deterministic so
 * plans are stable across runs. Extend the tables when a component reads a new attribute.
 */
import * as pulumi from "@pulumi/pulumi";

export const MOCK_ACCOUNT = "123456789012";
export const MOCK_REGION = "us-east-1";
export const MOCK_DIGEST = "sha256:3f1c4a5e8b9d0c2e7f6a1b4d8c9e0f2a3b5c7d9e1f0a2b4c6d8e0f1a3b5c7d9e";

function slug(name: string): string {
  return name.replace(/[^a-zA-Z0-9-]/g, "-").slice(0, 48);
}

/** The value every mocked `random:RandomPassword` resolves to, so tests can look for leaks. */
export function mockPasswordFor(name: string): string {
  return `mock-secret-${slug(name)}-Zq7x`;
}

type State = Record<string, unknown>;
const computed: Record<string, (name: string, inputs: State) => State> = {
  // The real provider marks these outputs secret; the mock monitor would not, so we do.
  "random:index/randomPassword:RandomPassword": (name) => ({
    result: pulumi.secret(mockPasswordFor(name)),
    bcryptHash: pulumi.secret("$2a$10$mock"),
  }),
  "random:index/randomId:RandomId": (name) => ({
    hex: "a1b2c3d4",
    b64Url: "obLD1A",
    dec: "2712847316",
    id: slug(name),
  }),
  "random:index/randomString:RandomString": (name) => ({ result: `mock${slug(name).replace(/-/g, "").slice(0, 12)}` }),
  "aws:lb/loadBalancer:LoadBalancer": (name) => ({
    dnsName: `${slug(name)}-1234567890.${MOCK_REGION}.elb.amazonaws.com`,
    zoneId: "Z35SXDOTRQ7X7K",
    arnSuffix: `app/${slug(name)}/50dc6c495c0c9188`,
  }),
  "aws:lb/targetGroup:TargetGroup": (name) => ({ arnSuffix: `targetgroup/${slug(name)}/73e2d6bc24d8a067` }),
  "aws:rds/instance:Instance": (name) => ({
    address: `${slug(name)}.abcdefghijkl.${MOCK_REGION}.rds.amazonaws.com`,
    endpoint: `${slug(name)}.abcdefghijkl.${MOCK_REGION}.rds.amazonaws.com:5432`,
    port: 5432,
    masterUserSecrets: [
      {
        secretArn: `arn:aws:secretsmanager:${MOCK_REGION}:${MOCK_ACCOUNT}:secret:rds!db-${slug(name)}-AbCdEf`,
        kmsKeyId: "",
        secretStatus: "active",
      },
    ],
  }),
  "aws:elasticache/replicationGroup:ReplicationGroup": (name) => ({
    primaryEndpointAddress: `master.${slug(name)}.abcdef.use1.cache.amazonaws.com`,
    readerEndpointAddress: `replica.${slug(name)}.abcdef.use1.cache.amazonaws.com`,
  }),
  "aws:ec2/eip:Eip": () => ({ publicIp: "203.0.113.10", allocationId: "eipalloc-0abc123" }),
  "aws:ec2/instance:Instance": () => ({ publicIp: "203.0.113.10", privateIp: "10.41.1.10" }),
  "aws:ecr/repository:Repository": (name) => ({
    repositoryUrl: `${MOCK_ACCOUNT}.dkr.ecr.${MOCK_REGION}.amazonaws.com/${slug(name)}`,
    registryId: MOCK_ACCOUNT,
  }),
  "aws:acm/certificate:Certificate": (_name, inputs) => ({
    domainValidationOptions: [
      inputs.domainName,
      ...((inputs.subjectAlternativeNames as unknown[] | undefined) ?? []),
    ].map((d) => ({
      domainName: d,
      resourceRecordName: `_abc123.${d}.`,
      resourceRecordType: "CNAME",
      resourceRecordValue: "_def456.acm-validations.aws.",
    })),
  }),
  // S3 appends a random suffix to a bucket's name; the program reads it back as `bucket`.
  "aws:s3/bucket:Bucket": (name, inputs) => ({ bucket: inputs.bucket ?? `${slug(name)}-20261123abcdef` }),
  "aws:route53/zone:Zone": () => ({ zoneId: "Z0123456789ABCDEFGHIJ", nameServers: ["ns-1.awsdns-01.org"] }),
  "aws:efs/fileSystem:FileSystem": (name) => ({ dnsName: `fs-0123${slug(name)}.efs.${MOCK_REGION}.amazonaws.com` }),
  "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": () => ({ hostedZone: "Z0NAMESPACE" }),
  "docker:index/image:Image": (_name, inputs) => ({
    repoDigest: `${String(inputs.imageName ?? "image").split(":")[0]}@${MOCK_DIGEST}`,
    imageName: inputs.imageName,
  }),
  "docker:index/registryImage:RegistryImage": () => ({ sha256Digest: MOCK_DIGEST }),
  "docker:index/remoteImage:RemoteImage": (_name, inputs) => ({
    repoDigest: String(inputs.name ?? ""),
    imageId: MOCK_DIGEST,
  }),
  "docker:index/network:Network": () => ({ ipamConfigs: [{ subnet: "172.28.0.0/16", gateway: "172.28.0.1" }] }),
};

export function mockState(args: pulumi.runtime.MockResourceArgs): { id: string; state: State } {
  const name = slug(args.name);
  const id = args.id || `${name}-id`;
  const [pkg, , kind] = args.type.split(":");
  const extra = computed[args.type]?.(args.name, args.inputs) ?? {};
  return {
    id,
    state: {
      ...args.inputs,
      ...(pkg === "aws"
        ? { arn: `arn:aws:${(kind ?? "resource").toLowerCase()}:${MOCK_REGION}:${MOCK_ACCOUNT}:${name}` }
        : {}),
      ...(args.inputs.name === undefined ? { name } : {}),
      ...extra,
    },
  };
}

const invokes: Record<string, (inputs: State) => State> = {
  "aws:index/getAvailabilityZones:getAvailabilityZones": () => ({
    names: ["a", "b", "c", "d"].map((s) => `${MOCK_REGION}${s}`),
    zoneIds: ["use1-az1", "use1-az2", "use1-az4", "use1-az6"],
    state: "available",
  }),
  "aws:index/getCallerIdentity:getCallerIdentity": () => ({
    accountId: MOCK_ACCOUNT,
    arn: `arn:aws:iam::${MOCK_ACCOUNT}:user/mock`,
    userId: "AIDAMOCK",
  }),
  "aws:index/getRegion:getRegion": () => ({ name: MOCK_REGION, region: MOCK_REGION, id: MOCK_REGION }),
  "aws:index/getPartition:getPartition": () => ({ partition: "aws", dnsSuffix: "amazonaws.com" }),
  "aws:ssm/getParameter:getParameter": (inputs) => ({
    name: inputs.name,
    value: "ami-0abcdef1234567890",
    type: "String",
  }),
  "aws:ec2/getAmi:getAmi": () => ({ id: "ami-0abcdef1234567890", imageId: "ami-0abcdef1234567890" }),
  "aws:route53/getZone:getZone": (inputs) => ({
    zoneId: "Z0123456789ABCDEFGHIJ",
    id: "Z0123456789ABCDEFGHIJ",
    name: inputs.name ?? "example.com",
  }),
  "aws:elb/getServiceAccount:getServiceAccount": () => ({ arn: "arn:aws:iam::127311923021:root", id: "127311923021" }),
  "aws:iam/getPolicyDocument:getPolicyDocument": (inputs) => ({
    json: JSON.stringify({
      Version: "2012-10-17",
      Statement: ((inputs.statements as State[] | undefined) ?? []).map((s) => ({
        Effect: s.effect ?? "Allow",
        Action: s.actions,
        Resource: s.resources,
        Principal: s.principals,
      })),
    }),
  }),
  "aws:ecr/getAuthorizationToken:getAuthorizationToken": () => ({
    userName: "AWS",
    password: "mock-ecr-token",
    proxyEndpoint: `https://${MOCK_ACCOUNT}.dkr.ecr.${MOCK_REGION}.amazonaws.com`,
  }),
};

export function mockCall(args: pulumi.runtime.MockCallArgs): State {
  const handler = invokes[args.token];
  if (!handler) return args.inputs;
  return handler(args.inputs);
}
