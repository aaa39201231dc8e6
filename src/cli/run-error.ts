/** A reason `patchpilot run` cannot start, with what to do about it (apart from run.ts, which loads client-node). */
export class RunError extends Error {
  override readonly name = 'RunError';
  readonly hint: string;

  constructor(message: string, hint: string) {
    super(message);
    this.hint = hint;
  }
}
