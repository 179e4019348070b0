export declare const missingCliMessage: string;
export declare function findPulumiCli(env?: NodeJS.ProcessEnv): string | undefined;
