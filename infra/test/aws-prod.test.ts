// The `prod` stack on the `medium` tier, under mocks (one stack per process).
import { describeAwsStack } from "./aws-checks.ts";

describeAwsStack("prod", "medium");
