/** Structured JSON logs (pino). Secrets never reach a log line: auth headers and keys are redacted. */
import { type Logger, pino } from "pino";

export function createLogger(level: string, opts: { sync?: boolean } = {}): Logger {
  return pino(
    {
      level,
      base: { service: "inferstack", pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "authorization",
          "*.authorization",
          "headers.authorization",
          '*.headers["x-api-key"]',
          "apiKey",
          "*.apiKey",
          "password",
          "*.password",
        ],
        censor: "[redacted]",
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    // Async writes keep the event loop free under load; main flushes them on exit.
    pino.destination({ dest: 1, sync: opts.sync ?? true }),
  );
}
