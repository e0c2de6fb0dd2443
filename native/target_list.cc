#include "target_list.h"

#include <string>

#include "convert.h"

namespace devmapper {

namespace {
constexpr size_t kMaxRows = dm::kMaxBufferSize / dm::kSpecSize;
}  // namespace

dm::TargetSpec readTargetSpec(const Napi::Value& rowValue, uint32_t i, const Keys::View& k) {
  // The row's place is spelled out only for a message: most requests have none to give.
  auto at = [i](const char* field) { return "request.targets[" + std::to_string(i) + "]" + field; };
  if (!rowValue.IsObject() || rowValue.IsArray() || rowValue.IsFunction()) requireObject(rowValue, at(""));
  Napi::Object row = rowValue.As<Napi::Object>();
  dm::TargetSpec spec;
  Napi::Value start = row.Get(k[Keys::Start]), length = row.Get(k[Keys::Length]), type = row.Get(k[Keys::Type]),
              params = row.Get(k[Keys::Params]);
  spec.start = isInteger(start, kMaxSafeInteger) ? integer(start) : requireInteger(start, at(".start"), kMaxSafeInteger);
  spec.length = isInteger(length, kMaxSafeInteger) ? integer(length) : requireInteger(length, at(".length"), kMaxSafeInteger);
  spec.type = type.IsString() ? type.As<Napi::String>().Utf8Value() : requireString(type, at(".type"));
  spec.params = params.IsString() ? params.As<Napi::String>().Utf8Value() : requireString(params, at(".params"));
  return spec;
}

Napi::Function TargetList::Define(Napi::Env env) {
  return DefineClass(env, "NativeTargetList",
                     {InstanceMethod<&TargetList::Append>("append"), InstanceAccessor<&TargetList::Count>("count")});
}

TargetList::TargetList(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TargetList>(info) {}

TargetList::~TargetList() { wipe(); }

void TargetList::wipe() {
  for (dm::TargetSpec& t : rows_) dm::secureZero(t.params.data(), t.params.size());
}

// append(rows, from, to): rows[from] ... rows[to - 1], checked as a request's rows are.
Napi::Value TargetList::Append(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (taken_) throw Napi::TypeError::New(env, "Invalid target list: it was loaded already");
  if (!info[0].IsArray()) throw typeError(env, "an array", "rows", info[0]);
  Napi::Array rows = info[0].As<Napi::Array>();
  const uint32_t from = static_cast<uint32_t>(requireInteger(info[1], "from", rows.Length()));
  const uint32_t to = static_cast<uint32_t>(requireInteger(info[2], "to", rows.Length()));
  if (to < from) throw Napi::RangeError::New(env, "Invalid target list range: to is before from");
  if (rows_.size() + (to - from) > kMaxRows)
    throw Napi::RangeError::New(env, "Invalid request: request.targets has more rows than a 256 MiB request can hold");
  const Keys::View k = addonData(env).keys.view();
  // All of the range or none of it: a bad row leaves the list as it was.
  std::vector<dm::TargetSpec> more;
  more.reserve(to - from);
  try {
    for (uint32_t i = from; i < to; i++) more.push_back(readTargetSpec(rows.Get(i), i, k));
  } catch (...) {
    for (dm::TargetSpec& t : more) dm::secureZero(t.params.data(), t.params.size());
    throw;
  }
  rows_.reserve(rows_.size() + more.size());
  for (dm::TargetSpec& t : more) rows_.push_back(std::move(t));
  return env.Undefined();
}

Napi::Value TargetList::Count(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(rows_.size()));
}

std::vector<dm::TargetSpec> TargetList::take(Napi::Env env) {
  if (taken_) throw Napi::TypeError::New(env, "Invalid request: its target list was loaded already");
  taken_ = true;
  return std::move(rows_);
}

TargetList* TargetList::from(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  Napi::FunctionReference& ctor = addonData(env).targetList;
  if (ctor.IsEmpty() || !value.As<Napi::Object>().InstanceOf(ctor.Value())) return nullptr;
  return Napi::ObjectWrap<TargetList>::Unwrap(value.As<Napi::Object>());
}

}  // namespace devmapper
