// The few libuv calls the I/O pool makes on its environment's event loop (a prepare handle
// that hands a run of JavaScript's requests over, an async handle that brings answers back).
// The Node-API headers the addon builds against carry no uv.h; these are libuv 1.x's stable C
// ABI (uv_handle_size, uv_handle_set_data and uv_handle_get_data since 1.19), which every Node
// binary exports. The handles are opaque here: their memory is uv_handle_size(type) bytes.
#pragma once

#include <cstddef>

struct uv_loop_s;

extern "C" {
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_prepare_s uv_prepare_t;
typedef struct uv_async_s uv_async_t;
typedef void (*uv_close_cb)(uv_handle_t* handle);
typedef void (*uv_prepare_cb)(uv_prepare_t* handle);
typedef void (*uv_async_cb)(uv_async_t* handle);

size_t uv_handle_size(int type);  // uv_handle_type: an int-sized enum
void* uv_handle_get_data(const uv_handle_t* handle);
void uv_handle_set_data(uv_handle_t* handle, void* data);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
void uv_ref(uv_handle_t* handle);
void uv_unref(uv_handle_t* handle);
int uv_async_init(struct uv_loop_s* loop, uv_async_t* async, uv_async_cb cb);
int uv_async_send(uv_async_t* async);  // any thread
int uv_prepare_init(struct uv_loop_s* loop, uv_prepare_t* prepare);
int uv_prepare_start(uv_prepare_t* prepare, uv_prepare_cb cb);
int uv_prepare_stop(uv_prepare_t* prepare);
}

namespace devmapper {
// UV_ASYNC and UV_PREPARE in uv.h's uv_handle_type (UV_UNKNOWN_HANDLE 0, ASYNC, CHECK,
// FS_EVENT, FS_POLL, HANDLE, IDLE, NAMED_PIPE, POLL, PREPARE).
constexpr int kUvAsync = 1;
constexpr int kUvPrepare = 9;
}  // namespace devmapper
