/**
 * The kubeconfig cannot be used as it is. Kept apart from the loader so that the CLI can recognise it without loading
 * client-node for every command.
 */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  readonly hint: string;

  constructor(message: string, hint: string) {
    super(message);
    this.hint = hint;
  }
}
