import { run } from "./dataplane.ts";
const r = await run({ seconds: 3, warmupSeconds: 1, concurrency: [16], rounds: 3 });
console.log(r.markdown);
