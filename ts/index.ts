/**
 * devmapper: drive the Linux device-mapper from Node.js through the DM ioctls on
 * /dev/mapper/control, with typed tables and loop devices.
 *
 * @module devmapper
 */
export { DeviceMapper, Command, Flag } from './client';
export { DeviceMapperSync } from './sync';
export type {
  DeviceInfo,
  DeviceListEntry,
  DeviceEvent,
  TargetTypeVersion,
  OpenOptions,
  CreateOptions,
  LoadOptions,
  SuspendOptions,
  ReloadOptions,
  QueryOptions,
  TableOptions,
  StatusOptions,
  MessageOptions,
  RemoveOptions,
  RemoveAllOptions,
  RecoverOptions,
  RecoveredDevice,
  Geometry,
  SignalOptions,
  UdevCallOptions,
} from './client';
export { DM_COOKIE_MAGIC, DM_UDEV_FLAGS_SHIFT, UdevFlag, UDEV_CONTROL, cookieEventNr, cookieKey, parseEventNr } from './udev';
export type { UdevMode, UdevSettings } from './udev';
export { MAPPER_DIR } from './nodes';
export type { MknodesResult } from './nodes';
export { Table, parseTarget } from './table';
export type { TableRow, TableRowInput } from './table';
export {
  targets,
  targetModules,
  targetParsers,
  parseTargetStatus,
  rawStatus,
  cacheMessages,
  cloneMessages,
  compressRegionMappings,
  cryptKeySizes,
  cryptMaskedParams,
  cryptMessages,
  dustMessages,
  eraMessages,
  logWritesMessages,
  integrityHoldsKey,
  integrityMaskedParams,
  maskCryptKeys,
  multipathMessages,
  parseCryptCipher,
  parseDustClearBadBlocks,
  parseDustCountBadBlocks,
  parseDustListBadBlocks,
  parseDustQueryBlock,
  raidMessages,
  switchMessages,
  thinPoolMessages,
  THIN_MAX_DEVICE_ID,
  vdoMessages,
  writecacheMessages,
  zonedMessages,
  FLAKEY_PROBABILITY_BASE,
  SNAPSHOT_MAX_CHUNK,
  VDO_OPTION_KEYS,
  INTEGRITY_MAX_TAG_SIZE,
} from './targets/index';
export type * from './targets/index';
export { parseStatus } from './status';
export { statsMessages, parseStatsRegionId, parseStatsList, parseStatsPrint } from './stats';
export type { StatsArea, StatsCreateOptions, StatsPrintOptions, StatsRange, StatsRegion, StatsStep } from './stats';
export type { StatusRow } from './status';
export { LoopDevice, blockDeviceSize, blockDiscard, blockGeometry, listLoopDevices } from './loop';
export type { LoopAttachOptions, LoopDeviceEntry, LoopStatus } from './loop';
export { DmError, DmParseError, DmClosedError } from './errors';
export type { DmErrorOptions } from './errors';
export { encodeDev, decodeDev, formatDev, parseDevNumber, resolveId } from './dev';
export type { DevId, DevNumber, DeviceRef, ResolvedId } from './dev';
export * from './workflows/index';
