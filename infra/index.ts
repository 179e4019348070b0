// Entry point loaded by Pulumi's nodejs runtime (Pulumi.yaml `main: infra/`). The default export's
// result becomes the stack outputs.
import { main } from "./program.ts";

export default main;
