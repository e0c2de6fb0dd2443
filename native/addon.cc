// The addon's entry point: the export table and nothing else.
#include <linux/dm-ioctl.h>
#include <linux/loop.h>
#include <napi.h>

#include "control.h"
#include "loop_binding.h"
#include "target_list.h"
#include "udev.h"

namespace devmapper {

static Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* name, double value) { c.Set(name, Napi::Number::New(env, value)); };
  set("DM_VERSION_MAJOR", DM_VERSION_MAJOR);
  set("DM_VERSION_MINOR", DM_VERSION_MINOR);
  set("DM_NAME_LEN", DM_NAME_LEN);
  set("DM_UUID_LEN", DM_UUID_LEN);
  set("DM_MAX_TYPE_NAME", DM_MAX_TYPE_NAME);
  set("DM_READONLY_FLAG", DM_READONLY_FLAG);
  set("DM_SUSPEND_FLAG", DM_SUSPEND_FLAG);
  set("DM_PERSISTENT_DEV_FLAG", DM_PERSISTENT_DEV_FLAG);
  set("DM_STATUS_TABLE_FLAG", DM_STATUS_TABLE_FLAG);
  set("DM_ACTIVE_PRESENT_FLAG", DM_ACTIVE_PRESENT_FLAG);
  set("DM_INACTIVE_PRESENT_FLAG", DM_INACTIVE_PRESENT_FLAG);
  set("DM_BUFFER_FULL_FLAG", DM_BUFFER_FULL_FLAG);
  set("DM_SKIP_BDGET_FLAG", DM_SKIP_BDGET_FLAG);
  set("DM_SKIP_LOCKFS_FLAG", DM_SKIP_LOCKFS_FLAG);
  set("DM_NOFLUSH_FLAG", DM_NOFLUSH_FLAG);
  set("DM_QUERY_INACTIVE_TABLE_FLAG", DM_QUERY_INACTIVE_TABLE_FLAG);
  set("DM_UEVENT_GENERATED_FLAG", DM_UEVENT_GENERATED_FLAG);
  set("DM_UUID_FLAG", DM_UUID_FLAG);
  set("DM_SECURE_DATA_FLAG", DM_SECURE_DATA_FLAG);
  set("DM_DATA_OUT_FLAG", DM_DATA_OUT_FLAG);
  set("DM_DEFERRED_REMOVE", DM_DEFERRED_REMOVE);
  set("DM_INTERNAL_SUSPEND_FLAG", DM_INTERNAL_SUSPEND_FLAG);
#ifdef DM_IMA_MEASUREMENT_FLAG
  set("DM_IMA_MEASUREMENT_FLAG", DM_IMA_MEASUREMENT_FLAG);
#endif
  set("DM_NAME_LIST_FLAG_HAS_UUID", DM_NAME_LIST_FLAG_HAS_UUID);
  set("DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID", DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID);
  set("DM_VERSION_CMD", DM_VERSION_CMD);
  set("DM_REMOVE_ALL_CMD", DM_REMOVE_ALL_CMD);
  set("DM_LIST_DEVICES_CMD", DM_LIST_DEVICES_CMD);
  set("DM_DEV_CREATE_CMD", DM_DEV_CREATE_CMD);
  set("DM_DEV_REMOVE_CMD", DM_DEV_REMOVE_CMD);
  set("DM_DEV_RENAME_CMD", DM_DEV_RENAME_CMD);
  set("DM_DEV_SUSPEND_CMD", DM_DEV_SUSPEND_CMD);
  set("DM_DEV_STATUS_CMD", DM_DEV_STATUS_CMD);
  set("DM_DEV_WAIT_CMD", DM_DEV_WAIT_CMD);
  set("DM_TABLE_LOAD_CMD", DM_TABLE_LOAD_CMD);
  set("DM_TABLE_CLEAR_CMD", DM_TABLE_CLEAR_CMD);
  set("DM_TABLE_DEPS_CMD", DM_TABLE_DEPS_CMD);
  set("DM_TABLE_STATUS_CMD", DM_TABLE_STATUS_CMD);
  set("DM_LIST_VERSIONS_CMD", DM_LIST_VERSIONS_CMD);
  set("DM_TARGET_MSG_CMD", DM_TARGET_MSG_CMD);
  set("DM_DEV_SET_GEOMETRY_CMD", DM_DEV_SET_GEOMETRY_CMD);
  set("DM_DEV_ARM_POLL_CMD", DM_DEV_ARM_POLL_CMD);
  set("DM_GET_TARGET_VERSION_CMD", DM_GET_TARGET_VERSION_CMD);
  set("LO_FLAGS_READ_ONLY", LO_FLAGS_READ_ONLY);
  set("LO_FLAGS_AUTOCLEAR", LO_FLAGS_AUTOCLEAR);
  set("LO_FLAGS_PARTSCAN", LO_FLAGS_PARTSCAN);
  set("LO_FLAGS_DIRECT_IO", LO_FLAGS_DIRECT_IO);
  return c;
}

}  // namespace devmapper

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  // Control::Define makes the environment's AddonData, where the TargetList class is kept.
  exports.Set("Control", devmapper::Control::Define(env));
  Napi::Function targetList = devmapper::TargetList::Define(env);
  devmapper::addonData(env).targetList = Napi::Persistent(targetList);
  exports.Set("TargetList", targetList);
  exports.Set("constants", devmapper::Constants(env));
  devmapper::InitLoop(env, exports);
  devmapper::InitUdev(env, exports);
  return exports;
}

NODE_API_MODULE(devmapper, InitAddon)
