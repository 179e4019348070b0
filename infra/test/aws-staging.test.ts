// The `staging` stack on the `small` tier, under mocks (one stack per process).
import { describeAwsStack } from "./aws-checks.ts";

// Staging sets the secret settings (prod uses the generated Grafana password, no receivers).
describeAwsStack("staging", "small", {
  grafanaAdminPassword: "staging-Grafana-admin-7f3a9c",
  alertReceivers: {
    slack: { webhookUrl: "https://hooks.slack.com/services/T000/B000/staging-secret-hook", channel: "#alerts-staging" },
  },
});
