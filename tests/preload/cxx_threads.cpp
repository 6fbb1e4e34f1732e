// cxx_threads.cpp: a threaded C++ program: std::thread, new/delete (plain, array and
// over-aligned), containers churning, objects handed between threads through shared_ptr,
// exceptions, and thread_local objects whose destructors allocate and free at thread exit.
// Every thread's work is deterministic, so the output is the same under any allocator.
// Without arguments it is a preload test (it first checks the preload is in use); with
// --real it is just a program, which run-real-programs.sh runs with and without the preload.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "preload_test.h"

namespace {

std::atomic<long> failures{0};

void expect(bool ok, const char *what) {
  if (ok) return;
  if (failures++ < 20) std::fprintf(stderr, "cxx_threads: FAIL: %s\n", what);
}

struct Rng {
  uint64_t s;
  uint64_t next() { return tu_rand(&s); }
};

// A message passed between threads: built by one, checked and destroyed by another.
struct Parcel {
  std::string text;
  std::vector<uint64_t> numbers;
  std::map<int, std::string> index;
  uint64_t sum() const {
    uint64_t h = text.size();
    for (auto n : numbers) h = h * 31 + n;
    for (auto &kv : index) h = h * 131 + kv.first + kv.second.size();
    return h;
  }
};

struct alignas(64) Line {
  char bytes[64];
};
struct alignas(4096) PageObj {
  char bytes[5000];
};

std::mutex mail_lock;
std::deque<std::shared_ptr<Parcel>> mailbox;
std::atomic<uint64_t> mail_sent{0}, mail_received{0};

std::mutex exit_lock;
std::vector<std::string> exit_notes; // written by thread_local destructors

// A thread_local whose destructor allocates (a string and a vector) and frees at thread exit.
struct ExitRecorder {
  int id = -1;
  std::vector<std::string> history;
  ~ExitRecorder() {
    if (id < 0) return;
    std::vector<size_t> lengths;
    for (auto &h : history) lengths.push_back(h.size());
    size_t total = 0;
    for (auto l : lengths) total += l;
    std::string note = "thread " + std::to_string(id) + " wrote " + std::to_string(history.size()) +
                       " notes of " + std::to_string(total) + " bytes";
    std::lock_guard<std::mutex> g(exit_lock);
    exit_notes.push_back(std::move(note));
  }
};
thread_local ExitRecorder recorder;
thread_local std::unordered_map<int, std::string> tls_cache; // destroyed at thread exit

std::shared_ptr<Parcel> make_parcel(Rng &rng) {
  auto p = std::make_shared<Parcel>();
  size_t n = rng.next() % 200;
  for (size_t i = 0; i < n; i++) p->numbers.push_back(rng.next() % 1000);
  p->text.assign(rng.next() % 3000, char('a' + rng.next() % 26));
  for (int i = 0; i < 20; i++) p->index[int(rng.next() % 100)] = std::string(i * 7, 'x');
  return p;
}

uint64_t containers(Rng &rng) {
  std::vector<std::string> words;
  for (int i = 0; i < 2000; i++) {
    std::string w;
    size_t len = 1 + rng.next() % 40;
    for (size_t j = 0; j < len; j++) w.push_back(char('a' + rng.next() % 26));
    words.push_back(std::move(w));
  }
  std::sort(words.begin(), words.end());
  std::map<std::string, int> counts;
  for (auto &w : words) counts[w.substr(0, 3)]++;
  std::unordered_map<int, std::vector<int>> buckets;
  for (int i = 0; i < 5000; i++) buckets[int(rng.next() % 500)].push_back(i);
  std::set<uint64_t> uniq;
  for (int i = 0; i < 3000; i++) uniq.insert(rng.next() % 10000);
  std::string joined;
  for (auto &kv : counts) joined += kv.first + "=" + std::to_string(kv.second) + ";";
  uint64_t h = joined.size() * 7 + uniq.size();
  for (auto &kv : buckets) h += kv.second.size() * (kv.first + 1);
  return h;
}

uint64_t raw_new_delete(Rng &rng) {
  uint64_t h = 0;
  std::vector<std::unique_ptr<int[]>> arrays;
  for (int i = 0; i < 300; i++) {
    size_t n = 1 + rng.next() % 5000;
    std::unique_ptr<int[]> a(new int[n]);
    for (size_t j = 0; j < n; j++) a[j] = int(j ^ n);
    h += a[n - 1];
    arrays.push_back(std::move(a));
    if (rng.next() % 3 == 0) arrays.erase(arrays.begin());
  }
  for (int i = 0; i < 200; i++) {
    auto *line = new Line[1 + i % 9];
    expect(reinterpret_cast<uintptr_t>(line) % 64 == 0, "new Line[] not 64-byte aligned");
    std::memset(line, i, sizeof(Line) * (1 + i % 9));
    delete[] line;
    auto *page = new PageObj;
    expect(reinterpret_cast<uintptr_t>(page) % 4096 == 0, "new PageObj not page aligned");
    std::memset(page->bytes, i, sizeof page->bytes);
    delete page;
  }
  return h;
}

uint64_t exceptions(Rng &rng) {
  uint64_t caught = 0;
  for (int i = 0; i < 200; i++) {
    try {
      std::vector<int> v(rng.next() % 100);
      if (i % 2 == 0) throw std::runtime_error(std::string(100 + i, 'e'));
      v.at(v.size() + 1) = 1; // throws std::out_of_range
    } catch (const std::runtime_error &e) {
      caught += std::strlen(e.what());
    } catch (const std::out_of_range &) {
      caught += 1;
    }
  }
  return caught;
}

void mail_round(Rng &rng, int self) {
  for (int i = 0; i < 20; i++) {
    auto p = make_parcel(rng);
    mail_sent += p->sum();
    std::lock_guard<std::mutex> g(mail_lock);
    mailbox.push_back(std::move(p));
  }
  for (int i = 0; i < 20; i++) {
    std::shared_ptr<Parcel> p;
    {
      std::lock_guard<std::mutex> g(mail_lock);
      if (mailbox.empty()) break;
      // Take from the front: mostly parcels made by other threads.
      p = std::move(mailbox.front());
      mailbox.pop_front();
    }
    mail_received += p->sum();
  }
  tls_cache[self] += "m";
}

uint64_t worker(int id, int rounds) {
  Rng rng{0x1234567ULL * (id + 1)};
  recorder.id = id;
  uint64_t h = 0;
  for (int r = 0; r < rounds; r++) {
    h = h * 3 + containers(rng);
    h = h * 3 + raw_new_delete(rng);
    h = h * 3 + exceptions(rng);
    mail_round(rng, id);
    recorder.history.push_back(std::string(r % 50 + 1, 'h'));
    std::function<uint64_t(uint64_t)> f = [s = std::string(r, 'f')](uint64_t x) {
      return x + s.size();
    };
    h = f(h);
  }
  return h;
}

} // namespace

int main(int argc, char **argv) {
  bool real = argc > 1 && std::strcmp(argv[1], "--real") == 0;
  if (!real) pt_start("cxx_threads");
  const int waves = 4, per_wave = 6, rounds = real ? 6 : 10;
  std::vector<uint64_t> results(waves * per_wave);
  for (int w = 0; w < waves; w++) {
    std::vector<std::thread> threads;
    for (int i = 0; i < per_wave; i++) {
      int id = w * per_wave + i;
      threads.emplace_back([id, rounds, &results] { results[id] = worker(id, rounds); });
    }
    for (auto &t : threads) t.join();
  }
  // Parcels left in the mailbox were made by threads that have all exited.
  while (!mailbox.empty()) {
    mail_received += mailbox.front()->sum();
    mailbox.pop_front();
  }
  expect(mail_sent.load() == mail_received.load(), "a parcel changed between threads");
  std::sort(exit_notes.begin(), exit_notes.end());
  expect(exit_notes.size() == results.size(), "a thread_local destructor did not run");
  for (size_t i = 0; i < results.size(); i++)
    std::printf("thread %2zu: %016llx\n", i, (unsigned long long)results[i]);
  for (auto &n : exit_notes) std::printf("%s\n", n.c_str());
  std::printf("parcels: %016llx\n", (unsigned long long)mail_sent.load());
  if (failures) {
    std::fprintf(stderr, "cxx_threads: %ld check(s) FAILED\n", failures.load());
    return 1;
  }
  if (!real) return pt_finish();
  return 0;
}
