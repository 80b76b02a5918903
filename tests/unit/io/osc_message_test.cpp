// SPDX-License-Identifier: GPL-3.0-or-later
// OSC messages without a network: serialise, parse, coerce numbers, and
// precise errors for malformed packets and mismatched arguments.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tatumflow/protocol/osc.hpp"

namespace tatumflow {
namespace {

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// Runs `parse` and returns the error message (empty when it parsed).
std::string parse_error(const std::vector<std::uint8_t>& bytes) {
  try {
    static_cast<void>(OscMessageIn::parse(bytes.data(), bytes.size()));
  } catch (const OscError& error) {
    return error.what();
  }
  return {};
}

TEST(OscMessage, RoundTripsEveryArgumentType) {
  OscMessageOut out("/tf/test");
  out.add(std::int32_t{-7}).add_int64(1LL << 40).add(0.25f).add(2.5).add(true).add(false).add("hello");
  const auto bytes = out.serialise();
  ASSERT_EQ(bytes.size() % 4, 0U);
  const OscMessageIn in = OscMessageIn::parse(bytes.data(), bytes.size());
  EXPECT_EQ(in.path(), "/tf/test");
  EXPECT_EQ(in.typetag(), "ihfdTFs");
  EXPECT_EQ(in.arg_int(0), -7);
  EXPECT_EQ(in.arg_int64(1), 1LL << 40);
  EXPECT_FLOAT_EQ(in.arg_float(2), 0.25f);
  EXPECT_DOUBLE_EQ(in.arg_double(3), 2.5);
  EXPECT_TRUE(in.arg_bool(4));
  EXPECT_FALSE(in.arg_bool(5));
  EXPECT_EQ(in.arg_string(6), "hello");
}

TEST(OscMessage, NumbersAreAcceptedForEachOther) {
  OscMessageOut out("/fader");
  out.add(0.6f).add(std::int32_t{3}).add(2.5f).add(true).add(-2.5f);
  const auto bytes = out.serialise();
  const OscMessageIn in = OscMessageIn::parse(bytes.data(), bytes.size());
  EXPECT_EQ(in.arg_int(0), 1);  // a fader's float rounds to nearest
  EXPECT_FLOAT_EQ(in.arg_float(1), 3.0f);
  EXPECT_DOUBLE_EQ(in.arg_double(1), 3.0);
  EXPECT_EQ(in.arg_int(2), 3);  // half away from zero
  EXPECT_EQ(in.arg_int(3), 1);  // T
  EXPECT_EQ(in.arg_int(4), -3);
  EXPECT_TRUE(in.arg_bool(0));
  EXPECT_EQ(in.arg_int64(2), 3);
}

TEST(OscMessage, AccessorErrorsNameTheArgumentAndTheType) {
  OscMessageOut out("/tf/tempo");
  out.add("fast").add(3e10f);
  const auto bytes = out.serialise();
  const OscMessageIn in = OscMessageIn::parse(bytes.data(), bytes.size());
  try {
    static_cast<void>(in.arg_float(0));
    FAIL() << "a string was accepted as a float";
  } catch (const OscError& error) {
    EXPECT_STREQ(error.what(), "argument 1 of /tf/tempo is a string 's', expected a number");
  }
  try {
    static_cast<void>(in.arg_int(1));
    FAIL() << "3e10 was accepted as an int32";
  } catch (const OscError& error) {
    EXPECT_NE(std::string(error.what()).find("argument 2 of /tf/tempo"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("does not fit a 32-bit integer"), std::string::npos)
        << error.what();
  }
  try {
    static_cast<void>(in.arg_int(2));
    FAIL() << "a missing argument was read";
  } catch (const OscError& error) {
    EXPECT_STREQ(error.what(), "missing argument 3 of /tf/tempo (an integer): the message has 2 arguments");
  }
  EXPECT_THROW(static_cast<void>(in.arg_string(1)), OscError);
}

TEST(OscMessage, MalformedPacketsGetPreciseErrors) {
  using namespace std::string_literals;
  EXPECT_EQ(parse_error(bytes_of("/a\0\0,i\0\0"s)),
            "argument 1 ('i') of /a at byte 8: needs 4 bytes, only 0 left in the 8-byte message");
  EXPECT_EQ(parse_error(bytes_of("/a\0\0,s\0\0abcd"s)),
            "argument 1 ('s') of /a at byte 8: string is not null-terminated before the end of the 12-byte "
            "message");
  EXPECT_EQ(parse_error(bytes_of("/a\0\0,x\0\0"s)), "argument 1 ('x') of /a at byte 8: unknown type tag 'x'");
  EXPECT_EQ(parse_error(bytes_of("/a\0\0i\0\0\0"s)), "/a: type tag string does not start with ',' (byte 4)");
  EXPECT_EQ(parse_error(bytes_of("/a\0\0"s)), "/a: no type tag string (OSC 1.0 requires one)");
  EXPECT_EQ(parse_error(bytes_of("/abc"s)), "OSC 4-byte message: address is not null-terminated");
  EXPECT_EQ(parse_error(bytes_of("hey\0,\0\0\0"s)), "OSC 8-byte message: address does not start with '/'");
  EXPECT_EQ(parse_error(bytes_of("/a\0"s)), "OSC 3-byte message: size is not a positive multiple of 4");
  EXPECT_EQ(parse_error(bytes_of("/a\0\0,i\0\0\0\0\0\1\0\0\0\0"s)), "/a: 4 bytes after the last argument");
  EXPECT_EQ(parse_error(bytes_of("/a\0\0,i\0\0\0\0\0\1"s)), "");
}

TEST(OscMessage, TypespecsCoerceNumbersButNotStrings) {
  EXPECT_NO_THROW(check_osc_typespec("ifsS"));
  EXPECT_NO_THROW(check_osc_typespec("*"));
  EXPECT_NO_THROW(check_osc_typespec(""));
  try {
    check_osc_typespec("ib");
    FAIL() << "'b' was accepted";
  } catch (const OscError& error) {
    EXPECT_NE(std::string(error.what()).find("'b' at position 2"), std::string::npos) << error.what();
  }

  OscMessageOut out("/tf/bars");
  out.add(4.0f).add("x");
  const auto bytes = out.serialise();
  const OscMessageIn in = OscMessageIn::parse(bytes.data(), bytes.size());
  EXPECT_EQ(osc_typespec_mismatch(in, "is"), "");
  EXPECT_EQ(osc_typespec_mismatch(in, "fS"), "");
  EXPECT_EQ(osc_typespec_mismatch(in, "*"), "");
  EXPECT_EQ(osc_typespec_mismatch(in, "i"), "/tf/bars expects 1 argument (i), got 2 arguments (fs)");
  EXPECT_EQ(osc_typespec_mismatch(in, "if"), "argument 2 of /tf/bars is a string 's', expected a number 'f'");
  EXPECT_EQ(osc_typespec_mismatch(in, "ss"), "argument 1 of /tf/bars is a float 'f', expected a string 's'");
}

TEST(OscMessage, RejectsAnAddressWithoutSlash) { EXPECT_THROW(OscMessageOut("tf/x"), OscError); }

TEST(OscTimetag, ConvertsToAndFromUnixMicroseconds) {
  const std::int64_t unix_us = 1'700'000'000'123'456;
  const OscTimetag tag = unix_us_to_osc_timetag(unix_us);
  EXPECT_EQ(tag.seconds, 1'700'000'000U + 2'208'988'800U);
  EXPECT_EQ(osc_timetag_to_unix_us(tag), unix_us);
  EXPECT_TRUE(OscTimetag{}.immediate());
  EXPECT_TRUE((OscTimetag{0, 0}.immediate()));
  EXPECT_FALSE(tag.immediate());
  // Half a second is 2^31 fractions.
  EXPECT_EQ(osc_timetag_to_unix_us(OscTimetag{2'208'988'800U + 10U, 1U << 31}), 10'500'000);
  // Past 2036 the seconds field wraps into NTP era 1.
  EXPECT_EQ(osc_timetag_to_unix_us(OscTimetag{5, 0}), ((1LL << 32) - 2'208'988'800LL + 5) * 1'000'000);
}

}  // namespace
}  // namespace tatumflow
