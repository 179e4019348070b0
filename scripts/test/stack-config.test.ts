import assert from "node:assert/strict";
import { test } from "node:test";
import { applyStandIns, parseStackFile, SECRET_PLACEHOLDER } from "../lib/stack-config.ts";

test("stack files become Pulumi's config map: structured values as JSON, secure values as placeholders", () => {
  const file = parseStackFile(
    [
      "encryptionsalt: v1:abc",
      "config:",
      "  aws:region: us-east-1",
      "  inferstack:tier: medium",
      "  inferstack:app:",
      "    replicas: 4",
      "  inferstack:alertReceivers:",
      "    secure: v1:Zm9vYmFy",
      "  inferstack:nested:",
      "    token:",
      "      secure: v1:cXV4",
      "    plain: 1",
    ].join("\n"),
    "Pulumi.prod.yaml",
  );
  assert.deepEqual(file.config, {
    "aws:region": "us-east-1",
    "inferstack:tier": "medium",
    "inferstack:app": '{"replicas":4}',
    "inferstack:alertReceivers": SECRET_PLACEHOLDER,
    "inferstack:nested": `{"token":"${SECRET_PLACEHOLDER}","plain":1}`,
  });
  assert.deepEqual(file.secretKeys, ["inferstack:alertReceivers", "inferstack:nested"]);
});

test("bad stack files fail with the file and key named", () => {
  assert.throws(() => parseStackFile("config: [1, 2]", "Pulumi.x.yaml"), /Pulumi\.x\.yaml: "config" must be a mapping/);
  assert.throws(
    () => parseStackFile("config:\n  tier: small", "Pulumi.x.yaml"),
    /config key "tier" needs a namespace, e\.g\. inferstack:tier/,
  );
  assert.throws(() => parseStackFile("config: {a: [", "Pulumi.x.yaml"), /Pulumi\.x\.yaml: not valid YAML/);
});

test("the free tier's per-operator SSH key gets a stand-in only when missing", () => {
  const filled = applyStandIns({ "inferstack:tier": "free", "inferstack:host": '{"instanceType":"t3.micro"}' });
  assert.deepEqual(filled.standIns, ["inferstack:host.sshPublicKey"]);
  assert.match(JSON.parse(filled.config["inferstack:host"]!).sshPublicKey, /^ssh-ed25519 \S+ plan-stand-in$/);
  assert.equal(JSON.parse(filled.config["inferstack:host"]!).instanceType, "t3.micro");
  const own = applyStandIns({ "inferstack:tier": "free", "inferstack:host": '{"sshPublicKey":"ssh-ed25519 AAAA me"}' });
  assert.deepEqual(own.standIns, []);
  assert.deepEqual(applyStandIns({ "inferstack:tier": "small" }).standIns, []);
});
