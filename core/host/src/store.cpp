#include "nas/store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nas/error.hpp"
#include "nas/evaluator.hpp"
#include "nas/scheduler.hpp"

namespace nas {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS evaluations(
  idx INTEGER PRIMARY KEY,
  round INTEGER NOT NULL,
  space TEXT NOT NULL,
  hash TEXT NOT NULL,
  genotype TEXT NOT NULL,
  decisions TEXT NOT NULL,
  memo BLOB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'reused', 'cancelled')),
  reward REAL,
  final_score REAL,
  metrics TEXT NOT NULL DEFAULT '{}',
  failure TEXT NOT NULL DEFAULT '',
  reused_from INTEGER REFERENCES evaluations(idx),
  worker TEXT NOT NULL DEFAULT '',
  proposed_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  observed INTEGER);
CREATE INDEX IF NOT EXISTS evaluations_hash ON evaluations(hash);
CREATE INDEX IF NOT EXISTS evaluations_round ON evaluations(round);
CREATE TABLE IF NOT EXISTS snapshots(round INTEGER PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signals(step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY(step, name));
CREATE TABLE IF NOT EXISTS jobs(
  idx INTEGER NOT NULL REFERENCES evaluations(idx),
  fidelity INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'cancelled')),
  reward REAL,
  final_score REAL,
  metrics TEXT NOT NULL DEFAULT '{}',
  failure TEXT NOT NULL DEFAULT '',
  worker TEXT NOT NULL DEFAULT '',
  dispatched_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  PRIMARY KEY(idx, fidelity));
)sql";

constexpr const char* kColumns =
    "idx, round, space, hash, genotype, decisions, memo, status, reward, final_score, metrics, failure, "
    "reused_from, worker, proposed_at, started_at, finished_at, observed";
// The highest fidelity a row's architecture reached and its reward there (a reused row: its
// source's), from the jobs table; stores written before it have none.
constexpr const char* kReached =
    ", (SELECT fidelity FROM jobs j WHERE j.idx = coalesce(e.reused_from, e.idx) AND j.status = 'ok' "
    "ORDER BY fidelity DESC LIMIT 1), (SELECT reward FROM jobs j WHERE j.idx = coalesce(e.reused_from, e.idx) AND "
    "j.status = 'ok' ORDER BY fidelity DESC LIMIT 1)";

constexpr EvaluationStatus kStatuses[] = {EvaluationStatus::pending, EvaluationStatus::ok, EvaluationStatus::failed,
                                          EvaluationStatus::reused, EvaluationStatus::cancelled};

EvaluationStatus parse_status(std::string_view text) {
  for (EvaluationStatus s : kStatuses)
    if (to_string(s) == text) return s;
  throw Error(fmt::format("store: unknown status '{}'", text));
}

}  // namespace

std::string_view to_string(EvaluationStatus status) {
  switch (status) {
    case EvaluationStatus::pending: return "pending";
    case EvaluationStatus::ok: return "ok";
    case EvaluationStatus::failed: return "failed";
    case EvaluationStatus::reused: return "reused";
    case EvaluationStatus::cancelled: return "cancelled";
  }
  return "?";
}

// A connection, and prepared statements that bind and step with errors naming the file.
struct SearchStore::Db {
  sqlite3* handle = nullptr;
  std::filesystem::path file;
  bool has_jobs = true;  // false: a store written before jobs were recorded, opened to read

  [[noreturn]] void fail(std::string_view what) const {
    throw Error(fmt::format("store '{}': {}: {}", file.string(), what, sqlite3_errmsg(handle)));
  }

  bool has_table(const char* name) const;

  void exec(const char* sql) const {
    char* message = nullptr;
    if (sqlite3_exec(handle, sql, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : "unknown error";
      sqlite3_free(message);
      throw Error(fmt::format("store '{}': {}", file.string(), text));
    }
  }

  class Statement {
   public:
    Statement(const Db& db, const std::string& sql) : db_(db) {
      if (sqlite3_prepare_v2(db.handle, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) db.fail("preparing a statement");
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
    Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
    Statement& bind(int i, std::string_view v) {
      return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    Statement& bind_blob(int i, std::string_view v) {
      return check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    Statement& bind(int i, const std::optional<double>& v) {
      return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
    }
    Statement& bind(int i, const std::optional<std::int64_t>& v) {
      return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
    }
    /// True while there is a row to read.
    bool step() {
      int rc = sqlite3_step(stmt_);
      if (rc == SQLITE_ROW) return true;
      if (rc != SQLITE_DONE) db_.fail("writing or reading");
      return false;
    }
    void run() {
      while (step()) {
      }
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    bool null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
    std::int64_t integer(int c) const { return sqlite3_column_int64(stmt_, c); }
    double number(int c) const { return sqlite3_column_double(stmt_, c); }
    std::string text(int c) const {
      const void* data = sqlite3_column_blob(stmt_, c);
      return data ? std::string(static_cast<const char*>(data), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
                  : std::string();
    }

   private:
    Statement& check(int rc) {
      if (rc != SQLITE_OK) db_.fail("binding a value");
      return *this;
    }
    const Db& db_;
    sqlite3_stmt* stmt_ = nullptr;
  };

  /// Runs `body` in one transaction: all of it is stored or none.
  template <class F>
  void transaction(F&& body) const {
    exec("BEGIN IMMEDIATE");
    try {
      body();
    } catch (...) {
      sqlite3_exec(handle, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    exec("COMMIT");
  }

  /// Sets the result columns of the pending row of `table` (evaluations or jobs) that `where`
  /// selects (its values bound from 9 on by `bind_where`); returns whether there was one.
  bool set_result(std::string_view table, std::string_view where, const Evaluation& evaluation, std::string_view worker,
                  double started_at, double finished_at, const std::function<void(Statement&)>& bind_where) const {
    Statement s(*this, fmt::format("UPDATE {} SET status = ?, reward = ?, final_score = ?, metrics = ?, failure = ?, "
                                   "worker = ?, started_at = ?, finished_at = ? WHERE {} AND status = 'pending'",
                                   table, where));
    s.bind(1, to_string(evaluation.reward ? EvaluationStatus::ok : EvaluationStatus::failed));
    s.bind(2, evaluation.reward).bind(3, evaluation.final_score).bind(4, nlohmann::json(evaluation.metrics).dump());
    s.bind(5, evaluation.failure).bind(6, worker).bind(7, started_at).bind(8, finished_at);
    bind_where(s);
    s.run();
    return sqlite3_changes(handle) == 1;
  }

  /// Rows in index order; `limit` -1: all.
  std::vector<StoredEvaluation> select(const std::string& where, const std::function<void(Statement&)>& bind,
                                       std::int64_t limit = -1) const {
    Statement s(*this, fmt::format("SELECT {}{} FROM evaluations e {} ORDER BY idx LIMIT {}", kColumns,
                                   has_jobs ? kReached : ", NULL, NULL", where, limit));
    bind(s);
    std::vector<StoredEvaluation> rows;
    while (s.step()) {
      StoredEvaluation e;
      e.index = s.integer(0);
      e.round = s.integer(1);
      e.space = s.text(2);
      e.hash = s.text(3);
      e.genotype = s.text(4);
      e.decisions = nlohmann::json::parse(s.text(5)).get<std::vector<std::int64_t>>();
      e.memo = s.text(6);
      e.status = parse_status(s.text(7));
      if (!s.null(8)) e.reward = s.number(8);
      if (!s.null(9)) e.final_score = s.number(9);
      e.metrics = nlohmann::json::parse(s.text(10)).get<std::map<std::string, double>>();
      e.failure = s.text(11);
      if (!s.null(12)) e.reused_from = s.integer(12);
      e.worker = s.text(13);
      e.proposed_at = s.number(14);
      e.started_at = s.number(15);
      e.finished_at = s.number(16);
      if (!s.null(17)) e.observed = s.integer(17);
      e.fidelity = s.null(18) ? 0 : s.integer(18);
      e.reward_reached = s.null(19) ? e.reward : std::optional<double>(s.number(19));
      rows.push_back(std::move(e));
    }
    return rows;
  }
};

SearchStore::SearchStore(const std::filesystem::path& file, Access access) : file_(file), db_(std::make_unique<Db>()) {
  db_->file = file;
  // A reader opens read-write all the same (without creating): reading a WAL database needs its
  // shared-memory file, which a read-only connection may not be able to create; query_only keeps it a reader.
  const int flags = access == Access::write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2(file.c_str(), &db_->handle, flags, nullptr) != SQLITE_OK) {
    std::string why = db_->handle ? sqlite3_errmsg(db_->handle) : "out of memory";
    sqlite3_close(db_->handle);
    throw Error(fmt::format("store '{}': cannot open: {}", file.string(), why));
  }
  try {
    sqlite3_busy_timeout(db_->handle, 10000);
    if (access == Access::read) {
      // Never writes: no statement may, and closing does not checkpoint the WAL into the database
      // (the search, or a --resume starting, owns that).
      sqlite3_db_config(db_->handle, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
      db_->exec("PRAGMA query_only=1;");
      Db::Statement s(*db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'evaluations'");
      if (!s.step() || s.integer(0) != 1) throw Error(fmt::format("store '{}': not a search store", file.string()));
      db_->has_jobs = db_->has_table("jobs");
    } else {
      // WAL: readers (nas-host report, sqlite3, pandas) never block the search; NORMAL sync survives a
      // killed process (what --resume needs), not a power cut in the last instants.
      db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
      db_->exec(kSchema);
    }
  } catch (...) {
    sqlite3_close(db_->handle);
    throw;
  }
}

SearchStore::~SearchStore() { sqlite3_close(db_->handle); }

void SearchStore::add_proposals(const std::vector<StoredEvaluation>& rows) {
  db_->transaction([&] {
    Db::Statement s(*db_, "INSERT INTO evaluations(idx, round, space, hash, genotype, decisions, memo, status, "
                          "proposed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)");
    for (const StoredEvaluation& e : rows) {
      s.bind(1, e.index).bind(2, e.round).bind(3, e.space).bind(4, e.hash).bind(5, e.genotype);
      s.bind(6, nlohmann::json(e.decisions).dump()).bind_blob(7, e.memo).bind(8, e.proposed_at);
      s.run();
    }
  });
}

bool SearchStore::Db::has_table(const char* name) const {
  Statement s(*this, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
  s.bind(1, std::string_view(name));
  return s.step() && s.integer(0) == 1;
}

void SearchStore::record_result(std::int64_t index, const Evaluation& evaluation, std::string_view worker,
                                double started_at, double finished_at) {
  db_->transaction([&] {
    if (!db_->set_result("evaluations", "idx = ?", evaluation, worker, started_at, finished_at,
                    [&](Db::Statement& s) { s.bind(9, index); }))
      throw Error(fmt::format("store '{}': evaluation {} is not pending", file_.string(), index));
  });
}

void SearchStore::start_job(const Job& job, double at) {
  // A job cancelled when a search stopped (wall time, target reward) may be started again by a resume.
  Db::Statement s(*db_, "INSERT INTO jobs(idx, fidelity, status, dispatched_at) VALUES (?, ?, 'pending', ?) "
                        "ON CONFLICT(idx, fidelity) DO UPDATE SET status = 'pending', dispatched_at = excluded.dispatched_at "
                        "WHERE status = 'cancelled'");
  s.bind(1, job.index).bind(2, job.fidelity).bind(3, at).run();
  if (sqlite3_changes(db_->handle) != 1)
    throw Error(fmt::format("store '{}': job {} at fidelity {} was started before", file_.string(), job.index,
                            job.fidelity));
}

bool SearchStore::record_job(const Job& job, const Evaluation& evaluation, std::string_view worker, double started_at,
                             double finished_at) {
  bool first = false;
  db_->transaction([&] {
    if (!db_->set_result("jobs", "idx = ? AND fidelity = ?", evaluation, worker, started_at, finished_at,
                    [&](Db::Statement& s) { s.bind(9, job.index).bind(10, job.fidelity); }))
      throw Error(fmt::format("store '{}': job {} at fidelity {} is not pending", file_.string(), job.index, job.fidelity));
    first = db_->set_result("evaluations", "idx = ?", evaluation, worker, started_at, finished_at,
                       [&](Db::Statement& s) { s.bind(9, job.index); });
  });
  return first;
}

std::vector<StoredJob> SearchStore::jobs() const {
  if (!db_->has_jobs) return {};
  Db::Statement s(*db_, "SELECT idx, fidelity, status, reward, final_score, failure, worker, dispatched_at, "
                        "started_at, finished_at FROM jobs ORDER BY idx, fidelity");
  std::vector<StoredJob> out;
  while (s.step()) {
    StoredJob j;
    j.job = {s.integer(0), s.integer(1)};
    j.status = parse_status(s.text(2));
    if (!s.null(3)) j.reward = s.number(3);
    if (!s.null(4)) j.final_score = s.number(4);
    j.failure = s.text(5);
    j.worker = s.text(6);
    j.dispatched_at = s.number(7);
    j.started_at = s.number(8);
    j.finished_at = s.number(9);
    out.push_back(std::move(j));
  }
  return out;
}

void SearchStore::record_reuse(std::int64_t index, std::int64_t from, double at) {
  db_->transaction([&] {
    Db::Statement s(*db_, "UPDATE evaluations SET (status, reward, final_score, metrics, failure, reused_from, "
                          "started_at, finished_at) = (SELECT 'reused', reward, final_score, metrics, failure, idx, ?, ? "
                          "FROM evaluations WHERE idx = ?) WHERE idx = ? AND status = 'pending'");
    s.bind(1, at).bind(2, at).bind(3, from).bind(4, index).run();
    if (sqlite3_changes(db_->handle) != 1)
      throw Error(fmt::format("store '{}': evaluation {} is not pending", file_.string(), index));
  });
}

void SearchStore::record_observed(const std::vector<std::int64_t>& indices, std::int64_t step,
                                  const std::map<std::string, double>& signals) {
  db_->transaction([&] {
    Db::Statement s(*db_, "UPDATE evaluations SET observed = ? WHERE idx = ? AND status NOT IN ('pending', 'cancelled')");
    for (std::int64_t index : indices) {
      s.bind(1, step).bind(2, index).run();
      if (sqlite3_changes(db_->handle) != 1)
        throw Error(fmt::format("store '{}': evaluation {} has no result to observe", file_.string(), index));
    }
    Db::Statement signal(*db_, "INSERT OR REPLACE INTO signals(step, name, value) VALUES (?, ?, ?)");
    for (const auto& [name, value] : signals)
      if (std::isfinite(value)) signal.bind(1, step).bind(2, name).bind(3, value).run();  // SQLite keeps no NaN
  });
}

std::vector<SearchStore::Signal> SearchStore::signals() const {
  if (!db_->has_table("signals")) return {};  // a store written before signals were recorded
  Db::Statement s(*db_, "SELECT step, name, value FROM signals ORDER BY step, name");
  std::vector<Signal> out;
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.number(2)});
  return out;
}

void SearchStore::cancel_pending() {
  db_->transaction([&] {
    db_->exec("UPDATE evaluations SET status = 'cancelled' WHERE status = 'pending'");
    db_->exec("UPDATE jobs SET status = 'cancelled' WHERE status = 'pending'");
  });
}

std::vector<StoredEvaluation> SearchStore::evaluations() const {
  return db_->select("", [](Db::Statement&) {});
}

StoredEvaluation SearchStore::evaluation(std::int64_t index) const {
  auto rows = db_->select("WHERE idx = ?", [&](Db::Statement& s) { s.bind(1, index); }, 1);
  if (rows.empty()) throw Error(fmt::format("store '{}': no evaluation {}", file_.string(), index));
  return std::move(rows.front());
}

std::vector<StoredEvaluation> SearchStore::best(std::int64_t k) const {
  std::vector<StoredEvaluation> rows = db_->select("WHERE status = 'ok'", [](Db::Statement&) {});
  // Multi-fidelity: who reached a higher fidelity first (its reward there is the better estimate), then by reward.
  std::stable_sort(rows.begin(), rows.end(), [](const StoredEvaluation& a, const StoredEvaluation& b) {
    if (a.fidelity != b.fidelity) return a.fidelity > b.fidelity;
    return *a.reward_reached > *b.reward_reached;
  });
  std::vector<StoredEvaluation> out;
  std::set<std::string> seen;
  for (StoredEvaluation& e : rows)
    if (static_cast<std::int64_t>(out.size()) < k && seen.insert(e.hash).second) out.push_back(std::move(e));
  return out;
}

std::optional<StoredEvaluation> SearchStore::first_evaluated(std::string_view hash) const {
  auto rows = db_->select("WHERE hash = ? AND status IN ('ok', 'failed')", [&](Db::Statement& s) { s.bind(1, hash); }, 1);
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

void SearchStore::save_snapshot(const Snapshot& snapshot) {
  db_->transaction([&] {
    db_->exec("DELETE FROM snapshots");
    Db::Statement s(*db_, "INSERT INTO snapshots(round, state) VALUES (?, ?)");
    s.bind(1, snapshot.round).bind_blob(2, snapshot.state).run();
  });
}

std::optional<SearchStore::Snapshot> SearchStore::latest_snapshot() const {
  Db::Statement s(*db_, "SELECT round, state FROM snapshots ORDER BY round DESC LIMIT 1");
  if (!s.step()) return std::nullopt;
  return Snapshot{s.integer(0), s.text(1)};
}

std::optional<std::string> SearchStore::meta(std::string_view key) const {
  Db::Statement s(*db_, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void SearchStore::set_meta(std::string_view key, std::string_view value) {
  Db::Statement s(*db_, "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  s.bind(1, key).bind(2, value).run();
}

}  // namespace nas
