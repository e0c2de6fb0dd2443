/**
 * Storage recipes: each a small module that does one job end to end (a thin pool and its
 * volumes, a snapshot and its merge, a multipath map...) on a `DeviceMapper`, with the typed
 * targets, rolling back what it made when a step fails, never leaving a device suspended, and
 * waiting on the kernel's events or status instead of sleeping. Built on the client and the
 * targets only: nothing here talks to the addon.
 */
export * from './thin-pool';
export * from './multipath';
export * from './switch';
export * from './crypt';
export * from './integrity';
export * from './verity';
export * from './snapshot';
export * from './tree';
export * from './faults';
export * from './linear';
export * from './striped';
export * from './mirror';
export * from './raid';
export * from './era';
export * from './cache';
export type { SyncWaitOptions } from './one-row';
