/** A sandbox that cannot start (its port taken); kept apart so the CLI can name it without loading the sandbox. */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  readonly hint: string;

  constructor(message: string, hint: string) {
    super(message);
    this.hint = hint;
  }
}
