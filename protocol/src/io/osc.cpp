// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/osc.hpp"

#include <lo/lo_errors.h>
#include <lo/lo_lowlevel.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace tatumflow {

namespace {

constexpr std::int64_t kNtpToUnixSeconds = 2'208'988'800;  // 1900-01-01 to 1970-01-01
constexpr double kFractionsPerSecond = 4294967296.0;       // 2^32

std::size_t padded(std::size_t length) { return (length + 4) & ~std::size_t{3}; }

// Byte length of the null-terminated, zero-padded OSC string at `offset`, or 0
// when it is not terminated inside `size`.
std::size_t osc_string_length(const std::uint8_t* data, std::size_t size, std::size_t offset) {
  const void* end = std::memchr(data + offset, 0, size - offset);
  if (end == nullptr) return 0;
  return padded(static_cast<std::size_t>(static_cast<const std::uint8_t*>(end) - (data + offset)));
}

std::uint32_t read_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::string type_name(char type) {
  switch (type) {
    case 'i':
      return "an int32 'i'";
    case 'h':
      return "an int64 'h'";
    case 'f':
      return "a float 'f'";
    case 'd':
      return "a double 'd'";
    case 's':
      return "a string 's'";
    case 'S':
      return "a symbol 'S'";
    case 'T':
      return "a true 'T'";
    case 'F':
      return "a false 'F'";
    default:
      return std::string("a '") + type + "'";
  }
}

bool is_number_type(char type) { return type != '\0' && std::strchr("ihfdTF", type) != nullptr; }
bool is_string_type(char type) { return type == 's' || type == 'S'; }

// Walks the arguments so that a malformed message is reported with the
// argument and byte where it goes wrong (liblo only returns an error code).
void check_arguments(const std::string& path, std::string_view types, const std::uint8_t* data,
                     std::size_t size, std::size_t offset) {
  for (std::size_t i = 0; i < types.size(); ++i) {
    const char type = types[i];
    const auto where = [&] {
      return "argument " + std::to_string(i + 1) + " ('" + std::string(1, type) + "') of " + path +
             " at byte " + std::to_string(offset);
    };
    std::size_t length = 0;
    switch (type) {
      case 'i':
      case 'f':
      case 'c':
      case 'r':
      case 'm':
        length = 4;
        break;
      case 'h':
      case 'd':
      case 't':
        length = 8;
        break;
      case 'T':
      case 'F':
      case 'N':
      case 'I':
        break;
      case 's':
      case 'S':
        if (offset >= size || (length = osc_string_length(data, size, offset)) == 0) {
          throw OscError(where() + ": string is not null-terminated before the end of the " +
                         std::to_string(size) + "-byte message");
        }
        break;
      case 'b':
        if (offset + 4 > size) throw OscError(where() + ": blob size runs past the end of the message");
        length = 4 + ((std::size_t{read_u32(data + offset)} + 3) & ~std::size_t{3});
        break;
      default:
        throw OscError(where() + ": unknown type tag '" + std::string(1, type) + "'");
    }
    if (offset + length > size) {
      throw OscError(where() + ": needs " + std::to_string(length) + " bytes, only " +
                     std::to_string(size - offset) + " left in the " + std::to_string(size) +
                     "-byte message");
    }
    offset += length;
  }
  if (offset != size) {
    throw OscError(path + ": " + std::to_string(size - offset) + " bytes after the last argument");
  }
}

std::string lo_error_text(int code) {
  switch (code) {
    case LO_ESIZE:
      return "invalid message size";
    case LO_EINVALIDPATH:
      return "invalid address";
    case LO_ENOTYPE:
    case LO_EINVALIDTYPE:
    case LO_EBADTYPE:
      return "invalid type tag string";
    case LO_EINVALIDARG:
      return "invalid argument";
    case LO_ETERM:
      return "string not null-terminated";
    case LO_EPAD:
      return "string padding is not zero";
    default:
      return "liblo error " + std::to_string(code);
  }
}

}  // namespace

void OscMessageIn::Free::operator()(void* message) const {
  lo_message_free(static_cast<lo_message>(message));
}

OscMessageIn OscMessageIn::parse(const std::uint8_t* data, std::size_t size) {
  const std::string bytes = std::to_string(size) + "-byte message";
  if (size == 0 || size % 4 != 0) throw OscError("OSC " + bytes + ": size is not a positive multiple of 4");
  if (data[0] != '/') throw OscError("OSC " + bytes + ": address does not start with '/'");
  const std::size_t path_length = osc_string_length(data, size, 0);
  if (path_length == 0) throw OscError("OSC " + bytes + ": address is not null-terminated");
  OscMessageIn message;
  message.path_ = reinterpret_cast<const char*>(data);
  if (path_length >= size) throw OscError(message.path_ + ": no type tag string (OSC 1.0 requires one)");
  if (data[path_length] != ',') {
    throw OscError(message.path_ + ": type tag string does not start with ',' (byte " +
                   std::to_string(path_length) + ")");
  }
  const std::size_t types_length = osc_string_length(data, size, path_length);
  if (types_length == 0) throw OscError(message.path_ + ": type tag string is not null-terminated");
  message.types_ = reinterpret_cast<const char*>(data + path_length + 1);
  check_arguments(message.path_, message.types_, data, size, path_length + types_length);

  int result = 0;
  // liblo copies the data; the cast only fits its C signature.
  lo_message parsed = lo_message_deserialise(const_cast<std::uint8_t*>(data), size, &result);
  if (parsed == nullptr) throw OscError(message.path_ + ": " + lo_error_text(result));
  message.message_.reset(parsed);
  message.argv_ = lo_message_get_argv(parsed);
  return message;
}

std::string OscMessageIn::describe(std::size_t index) const {
  return "argument " + std::to_string(index + 1) + " of " + path_;
}

const lo_arg& OscMessageIn::at(std::size_t index, const char* wanted) const {
  if (index >= types_.size()) {
    throw OscError("missing " + describe(index) + " (" + wanted + "): the message has " +
                   std::to_string(types_.size()) + " argument" + (types_.size() == 1 ? "" : "s"));
  }
  return *argv_[index];
}

double OscMessageIn::number(std::size_t index, const char* wanted) const {
  const lo_arg& arg = at(index, wanted);
  switch (types_[index]) {
    case 'i':
      return arg.i;
    case 'h':
      return static_cast<double>(arg.h);
    case 'f':
      return arg.f;
    case 'd':
      return arg.d;
    case 'T':
      return 1.0;
    case 'F':
      return 0.0;
    default:
      throw OscError(describe(index) + " is " + type_name(types_[index]) + ", expected " + wanted);
  }
}

std::int32_t OscMessageIn::arg_int(std::size_t index) const {
  if (index < types_.size() && types_[index] == 'i') return argv_[index]->i;
  const double value = number(index, "an integer");
  if (!(std::abs(value) < 2147483648.0)) {
    throw OscError(describe(index) + " = " + std::to_string(value) + " does not fit a 32-bit integer");
  }
  return static_cast<std::int32_t>(std::lround(value));
}

std::int64_t OscMessageIn::arg_int64(std::size_t index) const {
  if (index < types_.size() && (types_[index] == 'h' || types_[index] == 'i')) {
    return types_[index] == 'h' ? argv_[index]->h : argv_[index]->i;
  }
  const double value = number(index, "an integer");
  if (!(std::abs(value) < 9.2e18)) {
    throw OscError(describe(index) + " = " + std::to_string(value) + " does not fit a 64-bit integer");
  }
  return std::llround(value);
}

float OscMessageIn::arg_float(std::size_t index) const {
  return static_cast<float>(number(index, "a number"));
}

double OscMessageIn::arg_double(std::size_t index) const { return number(index, "a number"); }

bool OscMessageIn::arg_bool(std::size_t index) const { return number(index, "a boolean or number") != 0.0; }

std::string_view OscMessageIn::arg_string(std::size_t index) const {
  const lo_arg& arg = at(index, "a string");
  if (!is_string_type(types_[index])) {
    throw OscError(describe(index) + " is " + type_name(types_[index]) + ", expected a string");
  }
  return &arg.s;
}

void check_osc_typespec(std::string_view typespec) {
  if (typespec == "*") return;
  for (std::size_t i = 0; i < typespec.size(); ++i) {
    if (!is_number_type(typespec[i]) && !is_string_type(typespec[i])) {
      throw OscError("OSC typespec \"" + std::string(typespec) + "\": '" + std::string(1, typespec[i]) +
                     "' at position " + std::to_string(i + 1) +
                     " is not one of i h f d T F s S (or \"*\" alone)");
    }
  }
}

std::string osc_typespec_mismatch(const OscMessageIn& message, std::string_view typespec) {
  if (typespec == "*") return {};
  const std::string_view got = message.typetag();
  if (got.size() != typespec.size()) {
    const auto plural = [](std::size_t n) {
      return std::to_string(n) + (n == 1 ? " argument" : " arguments");
    };
    return message.path() + " expects " + plural(typespec.size()) + " (" + std::string(typespec) + "), got " +
           plural(got.size()) + " (" + std::string(got) + ")";
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool fits = is_number_type(typespec[i]) ? is_number_type(got[i]) : is_string_type(got[i]);
    if (!fits) {
      return "argument " + std::to_string(i + 1) + " of " + message.path() + " is " + type_name(got[i]) +
             ", expected " + (is_number_type(typespec[i]) ? "a number " : "a string ") + "'" +
             std::string(1, typespec[i]) + "'";
    }
  }
  return {};
}

OscMessageOut::OscMessageOut(std::string path) : path_(std::move(path)), message_(lo_message_new()) {
  if (path_.empty() || path_[0] != '/') {
    lo_message_free(static_cast<lo_message>(message_));
    throw OscError("OSC address '" + path_ + "' does not start with '/'");
  }
}

OscMessageOut::~OscMessageOut() {
  if (message_ != nullptr) lo_message_free(static_cast<lo_message>(message_));
}

OscMessageOut::OscMessageOut(OscMessageOut&& other) noexcept
    : path_(std::move(other.path_)), message_(other.message_) {
  other.message_ = nullptr;
}

OscMessageOut& OscMessageOut::operator=(OscMessageOut&& other) noexcept {
  if (this != &other) {
    if (message_ != nullptr) lo_message_free(static_cast<lo_message>(message_));
    path_ = std::move(other.path_);
    message_ = other.message_;
    other.message_ = nullptr;
  }
  return *this;
}

namespace {

void check_added(int result, const std::string& path) {
  if (result != 0) throw OscError(path + ": liblo could not add an argument (out of memory)");
}

}  // namespace

OscMessageOut& OscMessageOut::add(std::int32_t value) {
  check_added(lo_message_add_int32(static_cast<lo_message>(message_), value), path_);
  return *this;
}

OscMessageOut& OscMessageOut::add_int64(std::int64_t value) {
  check_added(lo_message_add_int64(static_cast<lo_message>(message_), value), path_);
  return *this;
}

OscMessageOut& OscMessageOut::add(float value) {
  check_added(lo_message_add_float(static_cast<lo_message>(message_), value), path_);
  return *this;
}

OscMessageOut& OscMessageOut::add(double value) {
  check_added(lo_message_add_double(static_cast<lo_message>(message_), value), path_);
  return *this;
}

OscMessageOut& OscMessageOut::add(bool value) {
  const auto message = static_cast<lo_message>(message_);
  check_added(value ? lo_message_add_true(message) : lo_message_add_false(message), path_);
  return *this;
}

OscMessageOut& OscMessageOut::add(std::string_view value) {
  check_added(lo_message_add_string(static_cast<lo_message>(message_), std::string(value).c_str()), path_);
  return *this;
}

std::vector<std::uint8_t> OscMessageOut::serialise() const {
  const auto message = static_cast<lo_message>(message_);
  std::size_t size = lo_message_length(message, path_.c_str());
  std::vector<std::uint8_t> bytes(size);
  lo_message_serialise(message, path_.c_str(), bytes.data(), &size);
  bytes.resize(size);
  return bytes;
}

std::int64_t osc_timetag_to_unix_us(OscTimetag tag) {
  std::int64_t seconds = static_cast<std::int64_t>(tag.seconds) - kNtpToUnixSeconds;
  // NTP era 1 starts in 2036; a small seconds field means it already has.
  if (seconds < 0) seconds += std::int64_t{1} << 32;
  const auto micros =
      static_cast<std::int64_t>(std::llround(static_cast<double>(tag.fraction) * 1e6 / kFractionsPerSecond));
  return seconds * 1'000'000 + micros;
}

OscTimetag unix_us_to_osc_timetag(std::int64_t unix_us) {
  std::int64_t seconds = unix_us / 1'000'000;
  std::int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  OscTimetag tag;
  tag.seconds = static_cast<std::uint32_t>((seconds + kNtpToUnixSeconds) & 0xFFFFFFFF);
  tag.fraction = static_cast<std::uint32_t>(
      std::llround(static_cast<double>(micros) * kFractionsPerSecond / 1e6) & 0xFFFFFFFF);
  return tag;
}

}  // namespace tatumflow
