// SPDX-License-Identifier: GPL-3.0-or-later
// The frame-accurate JACK MIDI client on a private dummy server (48 kHz, 64
// frames): output events measured by a recording JACK client, input stamped
// from frame times, late counting, reconnection, panic, and the MIDI clock
// master driving the output into a follower.
#include "tatumflow/protocol/jack_midi.hpp"

#include <gtest/gtest.h>
#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <climits>
#include <cmath>
#include <thread>
#include <vector>

#include "jack_test_server.hpp"
#include "tatumflow/protocol/midi_clock.hpp"
#include "tatumflow/protocol/midi_clock_driver.hpp"

namespace tatumflow {
namespace {

using namespace std::chrono_literals;

// Waits for `done` up to `timeout`, polling every millisecond.
template <class Predicate>
bool wait_for(Predicate done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A plain JACK client with one MIDI input that records, in its process
// callback, the absolute frame of every event and that frame's time on the
// steady clock (mapped like JackMidiClient, from jack_get_cycle_times).
class Recorder {
 public:
  struct Hit {
    std::uint32_t frame;          // jack_last_frame_time + offset
    std::uint32_t offset_frames;  // within its period
    std::int64_t time_us;         // -1 when JACK had no time map for the cycle
    std::array<std::uint8_t, 3> bytes;
  };

  explicit Recorder(const char* name) {
    client_ = jack_client_open(name, JackNoStartServer, nullptr);
    if (client_ == nullptr) return;
    port_ = jack_port_register(client_, "in", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput, 0);
    jack_set_process_callback(client_, &Recorder::process, this);
    jack_activate(client_);
  }
  ~Recorder() {
    if (client_ == nullptr) return;
    jack_deactivate(client_);
    jack_client_close(client_);
  }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  [[nodiscard]] bool ok() const { return client_ != nullptr && port_ != nullptr; }
  [[nodiscard]] std::string port_name() const { return jack_port_name(port_); }
  [[nodiscard]] std::size_t count() const { return count_.load(std::memory_order_acquire); }
  [[nodiscard]] const Hit& hit(std::size_t i) const { return hits_[i]; }

 private:
  static int process(jack_nframes_t nframes, void* arg) {
    auto& self = *static_cast<Recorder*>(arg);
    jack_nframes_t start = 0;
    jack_time_t start_us = 0;
    jack_time_t end_us = 0;
    float period_us = 0;
    const std::int64_t before_us = steady_now_us();
    const auto jack_us = static_cast<std::int64_t>(jack_get_time());
    const std::int64_t after_us = steady_now_us();
    if (after_us - before_us <= 4) self.offset_us_ = before_us + (after_us - before_us) / 2 - jack_us;
    const bool mapped = jack_get_cycle_times(self.client_, &start, &start_us, &end_us, &period_us) == 0 &&
                        end_us > start_us && self.offset_us_ != kUnknown;
    const PeriodTiming period =
        mapped ? PeriodTiming{static_cast<std::int64_t>(start_us) + self.offset_us_,
                              static_cast<std::int64_t>(end_us) + self.offset_us_, nframes}
               : PeriodTiming{0, 1, nframes};
    void* buffer = jack_port_get_buffer(self.port_, nframes);
    const std::uint32_t events = jack_midi_get_event_count(buffer);
    for (std::uint32_t i = 0; i < events; ++i) {
      jack_midi_event_t event;
      const std::size_t n = self.count_.load(std::memory_order_relaxed);
      if (jack_midi_event_get(&event, buffer, i) != 0 || n == self.hits_.size()) continue;
      Hit& hit = self.hits_[n];
      hit = Hit{start + event.time, event.time, mapped ? period.time_of(event.time) : -1, {}};
      for (std::size_t b = 0; b < std::min<std::size_t>(event.size, 3); ++b) hit.bytes[b] = event.buffer[b];
      self.count_.store(n + 1, std::memory_order_release);
    }
    return 0;
  }

  static constexpr std::int64_t kUnknown = INT64_MIN;
  jack_client_t* client_ = nullptr;
  jack_port_t* port_ = nullptr;
  std::int64_t offset_us_ = kUnknown;  // steady clock minus JACK's
  std::array<Hit, 8192> hits_{};
  std::atomic<std::size_t> count_{0};
};

MidiEvent note_on(std::int64_t time_us, std::uint8_t pitch) {
  return MidiEvent{time_us, {0x90, pitch, 100}, 3, 0};
}

TEST(JackMidiClient, WritesEachEventOnItsFrame) {
  TATUMFLOW_START_JACK(server);
  Recorder recorder("tfrec");
  ASSERT_TRUE(recorder.ok());
  JackMidiClient output({.client_name = "tfout", .output_port = "out", .output_connect = "tfrec:in"},
                        nullptr);
  EXPECT_EQ(output.sample_rate_hz(), 48000U);
  EXPECT_EQ(output.period_frames(), 64U);
  EXPECT_EQ(output.client_name(), "tfout");
  EXPECT_EQ(output.output_port_name(), "tfout:out");
  EXPECT_EQ(output.input_port_name(), "");
  EXPECT_EQ(output.output_latency_frames(), 0U);  // straight into another client
  auto sender = output.make_sender();

  // 400 events 2157 us apart, all queued at once well ahead of time. That is
  // 103.54 frames: 0.6178 of a period past a whole one, the golden ratio, so
  // successive offsets fill every frame of the period evenly. (1777 us, 85.3
  // frames, is almost 4/3 of a period: its offsets stayed near 3 values and
  // spread over all 64 only with enough clock drift.)
  constexpr int kEvents = 400;
  constexpr std::int64_t kSpacingUs = 2157;
  const std::int64_t base_us = steady_now_us() + 100'000;
  std::vector<std::int64_t> targets;
  for (int i = 0; i < kEvents; ++i) {
    targets.push_back(base_us + i * kSpacingUs);
    ASSERT_TRUE(sender.schedule(note_on(targets.back(), static_cast<std::uint8_t>(i % 128))));
  }
  ASSERT_TRUE(wait_for([&] { return recorder.count() >= kEvents; }, 5s)) << recorder.count();
  ASSERT_EQ(recorder.count(), static_cast<std::size_t>(kEvents));

  // Each event lands within one frame of its time, or, when the server missed
  // its cycle (an xrun on a loaded machine), at frame 0 of a later period and
  // counted as late. Events in cycles JACK could not time (its DLL restarting
  // after an xrun) are counted apart.
  const double us_per_frame = 1e6 / 48000.0;
  double worst_frames = 0;
  double sum_frames = 0;
  int on_frame = 0;
  int written_late = 0;
  int unmapped = 0;
  std::array<bool, 64> offsets_seen{};
  for (int i = 0; i < kEvents; ++i) {
    const auto& hit = recorder.hit(static_cast<std::size_t>(i));
    EXPECT_EQ(hit.bytes[1], i % 128) << "event " << i << " out of order";
    if (hit.time_us < 0) {
      ++unmapped;
      continue;
    }
    const double error_frames =
        static_cast<double>(hit.time_us - targets[static_cast<std::size_t>(i)]) / us_per_frame;
    if (std::abs(error_frames) <= 1.0) {
      ++on_frame;
      worst_frames = std::max(worst_frames, std::abs(error_frames));
      sum_frames += std::abs(error_frames);
      offsets_seen[hit.offset_frames] = true;
    } else {
      ++written_late;
      EXPECT_EQ(hit.offset_frames, 0U) << "event " << i << " off by " << error_frames << " frames";
      EXPECT_GT(error_frames, 0.0) << "event " << i << " early";
    }
  }
  const JackMidiStats stats = output.stats();
  RecordProperty("on_frame", on_frame);
  RecordProperty("worst_error_frames", std::to_string(worst_frames));
  RecordProperty("mean_error_frames", std::to_string(sum_frames / std::max(on_frame, 1)));
  std::printf(
      "%s server: %d/%d events on their frame (worst %.3f frames = %.1f us, mean %.3f frames), %d late; "
      "xruns %llu\n",
      server.realtime() ? "real-time" : "non-real-time", on_frame, kEvents, worst_frames,
      worst_frames * us_per_frame, sum_frames / std::max(on_frame, 1), written_late,
      static_cast<unsigned long long>(stats.xruns));
  EXPECT_LE(static_cast<std::uint64_t>(written_late), stats.late);
  EXPECT_GE(on_frame, kEvents / 2) << "the server hardly ran on time";
  if (stats.late == 0) {
    EXPECT_EQ(std::count(offsets_seen.begin(), offsets_seen.end(), true), 64) << "offsets were not spread";
  }
  EXPECT_EQ(stats.written, static_cast<std::uint64_t>(kEvents));
  EXPECT_EQ(stats.dropped, 0U);
}

TEST(JackMidiClient, PastEventsGoOutAtOnceAndCountAsLate) {
  TATUMFLOW_START_JACK(server);
  Recorder recorder("tfrec");
  ASSERT_TRUE(recorder.ok());
  JackMidiClient output({.client_name = "tfout", .output_port = "out", .output_connect = "tfrec:in"},
                        nullptr);
  auto sender = output.make_sender();
  // Two seconds back: past even for a server lagging far behind.
  const std::int64_t target_us = steady_now_us() - 2'000'000;
  ASSERT_TRUE(sender.schedule(note_on(target_us, 60)));
  ASSERT_TRUE(wait_for([&] { return recorder.count() == 1; }, 5s))
      << "written " << output.stats().written << ", late " << output.stats().late << ", recorded "
      << recorder.count();
  EXPECT_EQ(recorder.hit(0).offset_frames, 0U);
  EXPECT_EQ(output.stats().late, 1U);
  EXPECT_GE(output.stats().worst_late_frames, 48'000U);  // over a second, in frames
}

TEST(JackMidiClient, InputEventsCarryTheirFrameTime) {
  TATUMFLOW_START_JACK(server);
  MidiEventQueue input_queue(1024, 1);
  JackMidiClient input({.client_name = "tfin", .input_port = "in", .input_port_id = 7}, &input_queue);
  JackMidiClient output({.client_name = "tfout", .output_port = "out", .output_connect = "tfin:in"}, nullptr);
  auto sender = output.make_sender();
  constexpr int kEvents = 200;
  const std::int64_t base_us = steady_now_us() + 50'000;
  for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(sender.schedule(note_on(base_us + i * 2'311, 60)));
  std::vector<MidiEvent> received;
  ASSERT_TRUE(wait_for(
      [&] {
        MidiEvent event;
        while (input_queue.try_pop(event)) received.push_back(event);
        return received.size() >= kEvents;
      },
      5s));
  // Stamped within a frame of when they were written, except events the
  // output itself wrote late (counted there).
  double worst_us = 0;
  std::uint64_t off_frame = 0;
  for (int i = 0; i < kEvents; ++i) {
    const MidiEvent& event = received[static_cast<std::size_t>(i)];
    EXPECT_EQ(event.port, 7);
    const double error_us = std::abs(static_cast<double>(event.time_us - (base_us + i * 2'311)));
    if (error_us <= 1e6 / 48000.0) {
      worst_us = std::max(worst_us, error_us);
    } else {
      ++off_frame;
    }
  }
  RecordProperty("input_worst_error_us", std::to_string(worst_us));
  std::printf("input stamps: %d within a frame (worst %.1f us), %llu off; output late %llu\n",
              kEvents - static_cast<int>(off_frame), worst_us, static_cast<unsigned long long>(off_frame),
              static_cast<unsigned long long>(output.stats().late));
  // Untimed cycles (JACK's DLL restarting) stamp from the cycle start instead.
  EXPECT_LE(off_frame, output.stats().late + output.stats().unmapped_cycles + input.stats().unmapped_cycles);
  EXPECT_EQ(input.stats().received, static_cast<std::uint64_t>(kEvents));
}

TEST(JackMidiClient, FollowsASourceThatComesAndGoes) {
  TATUMFLOW_START_JACK(server);
  MidiEventQueue input_queue(256, 1);
  JackMidiClient input({.client_name = "tfin", .input_port = "in", .input_connect = "tfsource"},
                       &input_queue);
  EXPECT_FALSE(input.maintain_connections());  // nothing to follow yet
  const auto receive_one = [&](std::uint8_t pitch) {
    MidiEvent event;
    return wait_for([&] { return input_queue.try_pop(event) && event.bytes[1] == pitch; }, 2s);
  };
  for (std::uint8_t round = 0; round < 2; ++round) {
    JackMidiClient source({.client_name = "tfsource", .output_port = "out"}, nullptr);
    EXPECT_TRUE(input.maintain_connections()) << "round " << int{round};
    EXPECT_FALSE(input.maintain_connections());  // already connected
    auto sender = source.make_sender();
    ASSERT_TRUE(sender.schedule(note_on(steady_now_us() + 5'000, static_cast<std::uint8_t>(60 + round))));
    EXPECT_TRUE(receive_one(static_cast<std::uint8_t>(60 + round))) << "round " << int{round};
  }
}

TEST(JackMidiClient, PanicIsWrittenBeforeWaitUntilSentReturns) {
  TATUMFLOW_START_JACK(server);
  Recorder recorder("tfrec");
  ASSERT_TRUE(recorder.ok());
  JackMidiClient output({.client_name = "tfout", .output_port = "out", .output_connect = "tfrec"}, nullptr);
  auto sender = output.make_sender();
  for (const MidiEvent& event : panic_events(steady_now_us(), 0)) ASSERT_TRUE(sender.schedule(event));
  ASSERT_TRUE(output.wait_until_sent(2s));
  EXPECT_EQ(recorder.count(), kPanicEventCount);
  int all_notes_off = 0;
  for (std::size_t i = 0; i < recorder.count(); ++i) all_notes_off += recorder.hit(i).bytes[1] == 123 ? 1 : 0;
  EXPECT_EQ(all_notes_off, 16);
}

TEST(JackMidiClient, ReportsAMissingServerClearly) {
  try {
    JackMidiClient client({.client_name = "tfout", .server_name = "tf_no_such_server", .output_port = "out"},
                          nullptr);
    FAIL() << "opened a client on a server that does not exist";
  } catch (const JackError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot connect to the JACK server"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(JackMidiClient({.input_port = "in"}, nullptr), JackError);  // input without a queue
}

// The MIDI clock master, rendered ahead by the driver on an Asio loop, through
// the frame-accurate output into a second client's input and a follower.
TEST(JackMidiClock, MasterDrivesAFollowerThroughJack) {
  TATUMFLOW_START_JACK(server);
  MidiEventQueue input_queue(4096, 1);
  JackMidiClient input({.client_name = "tfin", .input_port = "in"}, &input_queue);
  JackMidiClient output({.client_name = "tfclock", .output_port = "out", .output_connect = "tfin:in"},
                        nullptr);
  auto sender = output.make_sender();

  boost::asio::io_context io;
  const std::int64_t start_us = steady_now_us() + 50'000;
  InternalClock clock(120.0, 4, start_us);
  MidiClockMaster master(clock, 0);
  master.start(start_us);
  MidiClockDriver driver(io, master, sender);
  driver.run();

  MidiClockFollower follower;
  std::vector<double> tick_errors_us;
  const std::int64_t tempo_change_us = start_us + 2'000'000;
  bool tempo_changed = false;
  boost::asio::steady_timer poll(io);
  std::function<void()> drain = [&] {
    MidiEvent event;
    while (input_queue.try_pop(event)) {
      if (event.status() == 0xF8 && follower.running()) {
        // Where the master's grid puts this tick (the grid only moves forward).
        const double expected =
            static_cast<double>(clock.time_of_beat_us(static_cast<double>(follower.next_tick()) / 24.0));
        if (!tempo_changed || event.time_us > tempo_change_us + 30'000) {
          tick_errors_us.push_back(static_cast<double>(event.time_us) - expected);
        }
      }
      follower.on_event(event);
    }
    if (!tempo_changed && steady_now_us() >= tempo_change_us - 25'000) {
      master.set_tempo(150.0, tempo_change_us);
      tempo_changed = true;
    }
    if (steady_now_us() < start_us + 4'000'000) {
      poll.expires_after(5ms);
      poll.async_wait([&](const boost::system::error_code& error) {
        if (!error) drain();
      });
    } else {
      driver.halt();
    }
  };
  drain();
  io.run();

  ASSERT_GT(tick_errors_us.size(), 180U);  // 2 s at 120 bpm and 2 s at 150 bpm: 213 clocks
  double worst = 0;
  std::uint64_t off_frame = 0;
  for (double error : tick_errors_us) {
    if (std::abs(error) <= 1e6 / 48000.0 + 1.0) {
      worst = std::max(worst, std::abs(error));
    } else {
      ++off_frame;
    }
  }
  const JackMidiStats stats = output.stats();
  RecordProperty("clock_tick_worst_error_us", std::to_string(worst));
  std::printf(
      "clock ticks through JACK: %zu measured, worst error %.1f us, %llu off frame (output late %llu); "
      "follower %.3f bpm\n",
      tick_errors_us.size(), worst, static_cast<unsigned long long>(off_frame),
      static_cast<unsigned long long>(stats.late), follower.tempo_bpm());
  EXPECT_LE(off_frame, stats.late + stats.unmapped_cycles + input.stats().unmapped_cycles);
  EXPECT_NEAR(follower.tempo_bpm(), 150.0, stats.late == 0 ? 0.05 : 1.0);
  EXPECT_TRUE(follower.locked(steady_now_us()));
  EXPECT_EQ(driver.dropped(), 0U);
}

}  // namespace
}  // namespace tatumflow
