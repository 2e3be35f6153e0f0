// The work queue's transport: many posters, one blocking reader, on a real c10d TCPStore (loopback).
#include <atomic>
#include <cstdio>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cluster.hpp"
#include "work_queue/mailbox.hpp"

namespace {

nas::World server_world() { return nas::World{0, 2, 0, "127.0.0.1", 0, false, "nas-host"}; }
nas::World client_world(std::uint16_t port) { return nas::World{1, 2, 0, "127.0.0.1", port, false, "nas-host"}; }

// 64 posters on connections of their own, 20 messages each, while one reader blocks on take(): every
// message arrives exactly once, each poster's in its order, and the reader wakes only for messages.
TEST(Mailbox, SixtyFourPostersOneReaderEveryMessageOnceInOrder) {
  constexpr int posters = 64, each = 20;
  nas::Cluster server(server_world(), std::chrono::seconds(30));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < posters; ++p)
    threads.emplace_back([&, p] {
      nas::Cluster client(client_world(server.port()), std::chrono::seconds(30));
      nas::Mailbox box(client.store(), "box");
      while (!go) std::this_thread::yield();
      for (int i = 0; i < each; ++i) box.post(fmt::format("{} {}", p, i));
    });
  go = true;
  nas::Mailbox reader(server.store(), "box");
  std::map<int, int> next;  // poster -> the message expected next
  int received = 0, wakes = 0;
  while (received < posters * each) {
    const std::vector<std::string> messages = reader.take();
    ++wakes;
    for (const std::string& m : messages) {
      int p = -1, i = -1;
      ASSERT_EQ(std::sscanf(m.c_str(), "%d %d", &p, &i), 2) << m;
      ASSERT_EQ(i, next[p]) << "poster " << p << ": out of order or twice";
      ++next[p];
      ++received;
    }
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(received, posters * each);
  EXPECT_TRUE(reader.waiting().empty());
  EXPECT_LE(wakes, posters * each + 1) << "a wake-up without a message is only the one after the last";
}

// A poster that pushed its message and died before ringing: the message is read at the next ring.
TEST(Mailbox, AMessageWhoseRingNeverCameIsReadAtTheNextRing) {
  nas::Cluster server(server_world(), std::chrono::seconds(30));
  server.store().queuePush("box", {'h', 'i'});  // a post cut short
  nas::Mailbox reader(server.store(), "box");
  std::thread ringer([&] {
    nas::Cluster client(client_world(server.port()), std::chrono::seconds(30));
    nas::Mailbox(client.store(), "box").ring();
  });
  std::vector<std::string> got = reader.take();
  ringer.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "hi");
}

// ring() wakes a reader with nothing to read: take() returns empty instead of blocking forever.
TEST(Mailbox, ARingWithoutAMessageWakesTheReader) {
  nas::Cluster server(server_world(), std::chrono::seconds(30));
  nas::Mailbox reader(server.store(), "box");
  std::thread ringer([&] {
    nas::Cluster client(client_world(server.port()), std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    nas::Mailbox(client.store(), "box").ring();
  });
  EXPECT_TRUE(reader.take().empty());
  ringer.join();
}

}  // namespace
