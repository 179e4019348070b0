// The `staging` stack on the `small` tier, under mocks (one stack per process).
import { describeAwsStack } from "./aws-checks.ts";

describeAwsStack("staging", "small");
