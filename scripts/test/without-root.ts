/**
 * The command prefix that runs a program as a user without root, for tests of what a user without
 * root or sudo sees. As root: a new user namespace with no mapping, where the process's id is the
 * overflow uid (65534) while files are still checked against the real owner, so the checkout is
 * readable wherever it was cloned (a `mktemp -d` folder is closed to `nobody`). Otherwise: nothing,
 * the caller already is such a user.
 */
export function withoutRoot(): string[] {
  return process.getuid?.() === 0 ? ["unshare", "--user"] : [];
}
