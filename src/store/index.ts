export { openStore, Store } from './store.ts';
export { isStoreError, StoreError } from './errors.ts';
export type { StoreErrorCode } from './errors.ts';
export { LATEST_SCHEMA_VERSION } from './migrations.ts';
export type * from './types.ts';
