#include "work_queue/mailbox.hpp"

#include <atomic>

#include <c10/util/Exception.h>

namespace nas {
namespace {

std::atomic<std::int64_t> requests{0};

std::vector<std::uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }

}  // namespace

std::int64_t queue_requests() { return requests.load(); }
void count_queue_requests(std::int64_t n) { requests += n; }

void Mailbox::post(const std::string& message) {
  store_.queuePush(name_, bytes(message));
  store_.set(bell(), bytes("1"));
  requests += 2;
}

void Mailbox::ring() {
  store_.set(bell(), bytes("1"));
  ++requests;
}

std::vector<std::string> Mailbox::waiting() {
  store_.deleteKey(bell());  // first: a post after the emptying below rings again
  const std::int64_t count = store_.queueLen(name_);
  requests += 2 + count;
  std::vector<std::string> messages;
  for (std::int64_t i = 0; i < count; ++i) {  // one reader: every one of them is there
    const std::vector<std::uint8_t> m = store_.queuePop(name_, false);
    messages.emplace_back(m.begin(), m.end());
  }
  return messages;
}

std::vector<std::string> Mailbox::take() {
  if (std::vector<std::string> messages = waiting(); !messages.empty()) return messages;
  try {
    ++requests;
    store_.wait({bell()});
  } catch (const c10::DistNetworkError&) {
    throw;
  } catch (const c10::DistStoreError&) {
    // The store's timeout passed without a ring (the processes that ring were stopped): a wake-up
    // like any other; the caller decides what a long silence means.
  }
  return waiting();
}

}  // namespace nas
