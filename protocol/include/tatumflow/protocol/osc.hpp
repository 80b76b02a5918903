// SPDX-License-Identifier: GPL-3.0-or-later
// OSC messages over liblo's (de)serialiser: a typed view of a received
// message's arguments that coerces numbers the way controllers need (a fader
// sends a float where an int is expected, a button sends 1.0 or T), an
// outgoing message builder, and timetag conversion. // event-loop thread
#pragma once

#include <lo/lo_osc_types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tatumflow {

// Any OSC failure: a malformed packet, an argument of the wrong type, a bad
// registration. The message names the path and the argument.
class OscError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A received message, deserialised and checked by liblo.
class OscMessageIn {
 public:
  // Parses one OSC message (not a bundle). Throws OscError saying what is
  // wrong and where.
  static OscMessageIn parse(const std::uint8_t* data, std::size_t size);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string_view typetag() const { return types_; }  // without the leading ','
  [[nodiscard]] std::size_t size() const { return types_.size(); }

  // Typed access; argument indices start at 0, error messages count from 1.
  // Numbers: i (int32), h (int64), f (float), d (double), T/F (1/0) are
  // accepted for each other; a non-integral value asked for as an integer is
  // rounded to nearest. Throws OscError on a missing argument, a type that is
  // not a number, or a value that does not fit.
  [[nodiscard]] std::int32_t arg_int(std::size_t index) const;
  [[nodiscard]] std::int64_t arg_int64(std::size_t index) const;
  [[nodiscard]] float arg_float(std::size_t index) const;
  [[nodiscard]] double arg_double(std::size_t index) const;
  // True/false from T/F or any number (non-zero is true).
  [[nodiscard]] bool arg_bool(std::size_t index) const;
  // s or S. The view lives as long as this message.
  [[nodiscard]] std::string_view arg_string(std::size_t index) const;

 private:
  struct Free {
    void operator()(void* message) const;
  };
  OscMessageIn() = default;
  // The argument's value as a double, or throws naming what was found.
  [[nodiscard]] double number(std::size_t index, const char* wanted) const;
  [[nodiscard]] const lo_arg& at(std::size_t index, const char* wanted) const;
  [[nodiscard]] std::string describe(std::size_t index) const;

  std::unique_ptr<void, Free> message_;  // lo_message
  std::string path_;
  std::string types_;
  lo_arg** argv_ = nullptr;
};

// Checks a handler typespec: characters from "ihfdTF" (numbers, coerced) and
// "sS" (strings), or "*" for any arguments. Throws OscError naming the bad character.
void check_osc_typespec(std::string_view typespec);
// Empty when `message` fits `typespec`, else why not, e.g. "/tf/tempo expects
// 1 argument (f), got 2 (ff)" or "argument 1 of /tf/tempo is a string 's',
// expected a number 'f'".
[[nodiscard]] std::string osc_typespec_mismatch(const OscMessageIn& message, std::string_view typespec);

// An outgoing message, built argument by argument.
class OscMessageOut {
 public:
  // Throws OscError unless `path` starts with '/'.
  explicit OscMessageOut(std::string path);
  ~OscMessageOut();
  OscMessageOut(OscMessageOut&&) noexcept;
  OscMessageOut& operator=(OscMessageOut&&) noexcept;
  OscMessageOut(const OscMessageOut&) = delete;
  OscMessageOut& operator=(const OscMessageOut&) = delete;

  OscMessageOut& add(std::int32_t value);
  OscMessageOut& add_int64(std::int64_t value);
  OscMessageOut& add(float value);
  OscMessageOut& add(double value);
  OscMessageOut& add(bool value);  // T or F
  OscMessageOut& add(std::string_view value);
  OscMessageOut& add(const char* value) { return add(std::string_view(value)); }

  [[nodiscard]] const std::string& path() const { return path_; }
  // The message in wire format.
  [[nodiscard]] std::vector<std::uint8_t> serialise() const;

 private:
  std::string path_;
  void* message_;  // lo_message
};

// OSC timetag (NTP: seconds since 1900 and 2^-32 fractions) and the system clock.
struct OscTimetag {
  std::uint32_t seconds = 0;
  std::uint32_t fraction = 1;
  // "Immediately" is (0, 1) by the specification; pyliblo and others send
  // (0, 0). No real target time falls in the first second of an NTP era.
  [[nodiscard]] bool immediate() const { return seconds == 0; }
};
// Microseconds since the Unix epoch. // any thread
[[nodiscard]] std::int64_t osc_timetag_to_unix_us(OscTimetag tag);
[[nodiscard]] OscTimetag unix_us_to_osc_timetag(std::int64_t unix_us);

}  // namespace tatumflow
