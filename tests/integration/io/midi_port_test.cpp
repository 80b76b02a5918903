// SPDX-License-Identifier: GPL-3.0-or-later
// RtMidi ports over JACK on a private dummy server (the ALSA sequencer is
// absent here): a virtual input fed by python-rtmidi, ports matched by name
// substring that follow a device unplugged and plugged back, panic, and clear
// errors when the MIDI system is missing.
#include "tatumflow/protocol/midi_port.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "jack_test_server.hpp"

namespace tatumflow {
namespace {

using namespace std::chrono_literals;

// Pops events until `count` have arrived or `timeout` passed.
std::vector<MidiEvent> receive(MidiEventQueue& queue, std::size_t count, std::chrono::milliseconds timeout) {
  std::vector<MidiEvent> events;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (events.size() < count && std::chrono::steady_clock::now() < deadline) {
    MidiEvent event;
    if (queue.try_pop(event)) {
      events.push_back(event);
    } else {
      std::this_thread::sleep_for(1ms);
    }
  }
  return events;
}

MidiEvent note_on(std::uint8_t pitch) { return MidiEvent{0, {0x90, pitch, 100}, 3, 0}; }

TEST(MidiPort, VirtualInputReceivesWhatAnotherProgramSends) {
  if (std::system("/usr/bin/python3 -c 'import rtmidi' 2> /dev/null") != 0)
    GTEST_SKIP() << "no python3-rtmidi";
  TATUMFLOW_START_JACK(server);
  MidiEventQueue queue(256, 1);
  MidiInputPort input({.api = MidiApi::jack, .client_name = "tfin", .port_name = "in", .port_id = 3}, queue);
  EXPECT_TRUE(input.connected());

  const std::int64_t before_us = steady_now_us();
  // Note, clock, start, song position, sysex (dropped), stop, note off.
  const int status = std::system(
      "/usr/bin/python3 -c \"\n"
      "import rtmidi, time\n"
      "out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name='pysend')\n"
      "out.open_port(next(i for i, p in enumerate(out.get_ports()) if 'tfin:in' in p))\n"
      "time.sleep(0.2)\n"
      "for m in ([0x90, 60, 100], [0xF8], [0xFA], [0xF2, 0x10, 0x01], [0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7],\n"
      "          [0xFC], [0x80, 60, 0]):\n"
      "    out.send_message(m)\n"
      "    time.sleep(0.01)\n"
      "time.sleep(0.2)\n"
      "\"");
  ASSERT_EQ(status, 0);
  const std::int64_t after_us = steady_now_us();
  const auto events = receive(queue, 6, 2s);
  ASSERT_EQ(events.size(), 6U);
  const std::vector<std::vector<std::uint8_t>> expected{{0x90, 60, 100},    {0xF8}, {0xFA},
                                                        {0xF2, 0x10, 0x01}, {0xFC}, {0x80, 60, 0}};
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(std::vector<std::uint8_t>(events[i].bytes.begin(), events[i].bytes.begin() + events[i].size),
              expected[i])
        << "event " << i;
    EXPECT_EQ(events[i].port, 3);
    EXPECT_GE(events[i].time_us, before_us);
    EXPECT_LE(events[i].time_us, after_us);
    if (i > 0) {
      EXPECT_GT(events[i].time_us, events[i - 1].time_us + 5'000);  // sent 10 ms apart
    }
  }
  MidiEvent extra;
  EXPECT_FALSE(queue.try_pop(extra)) << "the sysex came through";
}

TEST(MidiPort, InputMatchedBySubstringFollowsTheDevice) {
  TATUMFLOW_START_JACK(server);
  MidiEventQueue queue(256, 1);
  const MidiPortConfig device_config{.api = MidiApi::jack, .client_name = "tfdevice", .port_name = "out"};
  auto device = std::make_unique<MidiOutputPort>(device_config);
  MidiInputPort input({.api = MidiApi::jack, .client_name = "tfin", .port_name = "in", .match = "tfdevice"},
                      queue);
  ASSERT_TRUE(input.connected());
  EXPECT_EQ(input.device_name(), "tfdevice:out");
  EXPECT_FALSE(input.poll_reconnect());
  ASSERT_TRUE(device->send(note_on(60)));
  auto events = receive(queue, 1, 2s);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].bytes[1], 60);

  device.reset();  // unplugged
  EXPECT_TRUE(input.poll_reconnect());
  EXPECT_FALSE(input.connected());
  EXPECT_EQ(input.device_name(), "");
  EXPECT_FALSE(input.poll_reconnect());  // still gone

  device = std::make_unique<MidiOutputPort>(device_config);  // plugged back
  EXPECT_TRUE(input.poll_reconnect());
  EXPECT_TRUE(input.connected());
  ASSERT_TRUE(device->send(note_on(62)));
  events = receive(queue, 1, 2s);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].bytes[1], 62);
  const auto sources = list_midi_sources(MidiApi::jack);
  EXPECT_NE(std::find(sources.begin(), sources.end(), "tfdevice:out"), sources.end());
}

TEST(MidiPort, OutputMatchedBySubstringReachesTheSynthAndPanics) {
  TATUMFLOW_START_JACK(server);
  MidiEventQueue queue(256, 1);
  MidiInputPort synth({.api = MidiApi::jack, .client_name = "tfsynth", .port_name = "in"}, queue);
  MidiOutputPort output(
      {.api = MidiApi::jack, .client_name = "tfout", .port_name = "out", .match = "tfsynth"});
  ASSERT_TRUE(output.connected());
  EXPECT_EQ(output.device_name(), "tfsynth:in");
  ASSERT_TRUE(output.send(note_on(64)));
  EXPECT_EQ(output.send_panic(), kPanicEventCount);
  const auto events = receive(queue, 1 + kPanicEventCount, 2s);
  ASSERT_EQ(events.size(), 1 + kPanicEventCount);
  EXPECT_EQ(events[0].bytes[1], 64);
  EXPECT_EQ(events.back().bytes[1], 123);  // all notes off, channel 16
  EXPECT_EQ(events.back().channel(), 15);
  EXPECT_EQ(output.dropped(), 0U);
}

TEST(MidiPort, OutputWaitsForItsDeviceAndFollowsIt) {
  TATUMFLOW_START_JACK(server);
  MidiOutputPort output(
      {.api = MidiApi::jack, .client_name = "tfout", .port_name = "out", .match = "tflatesynth"});
  EXPECT_FALSE(output.connected());
  EXPECT_FALSE(output.send(note_on(60)));  // nowhere to go: dropped and counted
  EXPECT_EQ(output.dropped(), 1U);
  EXPECT_FALSE(output.poll_reconnect());

  MidiEventQueue queue(64, 2);
  {
    MidiInputPort synth({.api = MidiApi::jack, .client_name = "tflatesynth", .port_name = "in"}, queue);
    EXPECT_TRUE(output.poll_reconnect());
    EXPECT_EQ(output.device_name(), "tflatesynth:in");
    ASSERT_TRUE(output.send(note_on(61)));
    const auto events = receive(queue, 1, 2s);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].bytes[1], 61);
  }
  EXPECT_TRUE(output.poll_reconnect());  // the synth went away
  EXPECT_FALSE(output.connected());
  EXPECT_FALSE(output.send(note_on(62)));
  EXPECT_EQ(output.dropped(), 2U);
}

TEST(MidiPort, ApiNamesAndMissingSystemsGiveClearErrors) {
  EXPECT_EQ(parse_midi_api("jack"), MidiApi::jack);
  EXPECT_EQ(parse_midi_api("alsa"), MidiApi::alsa);
  EXPECT_EQ(parse_midi_api("auto"), MidiApi::automatic);
  try {
    static_cast<void>(parse_midi_api("coremidi"));
    FAIL();
  } catch (const MidiError& error) {
    EXPECT_STREQ(error.what(), "midi.api: 'coremidi' is not one of auto, alsa, jack");
  }
  const bool have_alsa = std::filesystem::exists("/dev/snd/seq");
  EXPECT_EQ(resolve_midi_api(MidiApi::automatic), have_alsa ? MidiApi::alsa : MidiApi::jack);

  MidiEventQueue queue(16, 4);
  if (!have_alsa) {
    try {
      MidiInputPort input({.api = MidiApi::alsa}, queue);
      FAIL() << "opened ALSA without /dev/snd/seq";
    } catch (const MidiError& error) {
      EXPECT_NE(std::string(error.what()).find("MIDI input 'midi' (alsa)"), std::string::npos)
          << error.what();
    }
  }
  // JACK without a server: RtMidi would only warn (and crash later); we throw.
  setenv("JACK_DEFAULT_SERVER", "tf_no_such_server", 1);
  try {
    MidiOutputPort output({.api = MidiApi::jack, .client_name = "tfout"});
    FAIL() << "opened JACK without a server";
  } catch (const MidiError& error) {
    EXPECT_STREQ(error.what(),
                 "MIDI output 'midi' (jack): cannot connect to the JACK server (is jackd running?)");
  }
  EXPECT_THROW(MidiInputPort({.api = MidiApi::jack}, queue), MidiError);
}

}  // namespace
}  // namespace tatumflow
