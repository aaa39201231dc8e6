/** The Palette API client (used by src/service; src/cli builds it from the environment). */
export {
  DEFAULT_PALETTE_API_URL,
  PaletteClient,
  PaletteError,
  checkUid,
  clearedOnDemand,
  isUnsetTimestamp,
  osPatchPath,
  osPatchUpdateBody,
  paletteSettingsFromEnv,
  type FetchLike,
  type OsPatchConfig,
  type PaletteClientOptions,
  type PaletteErrorKind,
  type PaletteSettings,
} from './client.ts';
