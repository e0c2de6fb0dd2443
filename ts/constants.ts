/** DM command numbers (`DM_*_CMD` in linux/dm-ioctl.h). */
export const Command = {
  /** DM_VERSION: the interface version of the driver. */
  VERSION: 0,
  /** DM_REMOVE_ALL: remove every device that is not open. */
  REMOVE_ALL: 1,
  /** DM_LIST_DEVICES: name, number (and event number, uuid on newer kernels) of every device. */
  LIST_DEVICES: 2,
  /** DM_DEV_CREATE: make a device, with no table. */
  DEV_CREATE: 3,
  /** DM_DEV_REMOVE: remove a device (or mark it for deferred removal). */
  DEV_REMOVE: 4,
  /** DM_DEV_RENAME: give a device a new name, or set its uuid (with {@link Flag.UUID}). */
  DEV_RENAME: 5,
  /** DM_DEV_SUSPEND: suspend a device, or resume it (swapping in its inactive table). */
  DEV_SUSPEND: 6,
  /** DM_DEV_STATUS: a device's state (open count, event number, flags). */
  DEV_STATUS: 7,
  /** DM_DEV_WAIT: block until the device's event number passes the one given. */
  DEV_WAIT: 8,
  /** DM_TABLE_LOAD: load a table into the device's inactive slot. */
  TABLE_LOAD: 9,
  /** DM_TABLE_CLEAR: drop the device's inactive table. */
  TABLE_CLEAR: 10,
  /** DM_TABLE_DEPS: the device numbers a table uses. */
  TABLE_DEPS: 11,
  /** DM_TABLE_STATUS: a table's rows or its targets' status text. */
  TABLE_STATUS: 12,
  /** DM_LIST_VERSIONS: every loaded target type and its version. */
  LIST_VERSIONS: 13,
  /** DM_TARGET_MSG: send a message to a target (and read its answer, with DATA_OUT). */
  TARGET_MSG: 14,
  /** DM_DEV_SET_GEOMETRY: set the disk geometry a device reports. */
  DEV_SET_GEOMETRY: 15,
  /** DM_DEV_ARM_POLL: rearm the control fd's poll for the next event (interface 4.37). */
  DEV_ARM_POLL: 16,
  /** DM_GET_TARGET_VERSION: one target type's version, loading its module (interface 4.41). */
  GET_TARGET_VERSION: 17,
} as const;

/** dm_ioctl flags (linux/dm-ioctl.h). */
export const Flag = {
  /** In: load or create read-only. Out: the device is read-only. */
  READONLY: 1 << 0,
  /** In (DEV_SUSPEND): suspend rather than resume. Out: the device is suspended. */
  SUSPEND: 1 << 1,
  /** In (DEV_CREATE): use the device number given instead of choosing one. */
  PERSISTENT_DEV: 1 << 3,
  /** In (TABLE_STATUS): return the table's rows rather than its status. */
  STATUS_TABLE: 1 << 4,
  /** Out: the device has a live table. */
  ACTIVE_PRESENT: 1 << 5,
  /** Out: the device has an inactive table loaded. */
  INACTIVE_PRESENT: 1 << 6,
  /** Out: the answer did not fit in the buffer; retry with a larger one. */
  BUFFER_FULL: 1 << 8,
  /** Obsolete: the kernel ignores it. */
  SKIP_BDGET: 1 << 9,
  /** In (DEV_SUSPEND): do not freeze the filesystem on the device. */
  SKIP_LOCKFS: 1 << 10,
  /** In (DEV_SUSPEND): suspend without flushing queued I/O; (status, wait) without committing thin metadata first. */
  NOFLUSH: 1 << 11,
  /** In: ask about the inactive table rather than the live one (status, table, deps). */
  QUERY_INACTIVE_TABLE: 1 << 12,
  /** Out: the command raised a uevent (udev has work to do for this cookie). */
  UEVENT_GENERATED: 1 << 13,
  /** In (DEV_RENAME): the new string is the device's uuid, not its name. */
  UUID: 1 << 14,
  /** In: wipe the ioctl buffer in the kernel after use (key material in tables or messages). */
  SECURE_DATA: 1 << 15,
  /** Out (TARGET_MSG): the target wrote an answer into the buffer. */
  DATA_OUT: 1 << 16,
  /** In (DEV_REMOVE): remove once the last opener closes. Out: a deferred removal is pending. */
  DEFERRED_REMOVE: 1 << 17,
  /** Out: the device is suspended by the kernel itself (a pool's internal suspend). */
  INTERNAL_SUSPEND: 1 << 18,
  /** In (TABLE_STATUS): return the IMA measurement text of the table. */
  IMA_MEASUREMENT: 1 << 19,
} as const;
