#pragma once
/// The blocking forms of the facade's asynchronous calls: run the call, wait for its answer.

#include <future>
#include <utility>

#include "pointex/engine.hpp"

namespace pointex::engine {

/// Runs `call` with a callback and waits for it: the callback's status, its result in
/// `*result`. REQUIRES: not called on the thread that runs the callback.
template <class Result, class Call>
Status blocking(Result* result, Call call) {
  std::promise<Status> done;
  std::future<Status> f = done.get_future();
  call([&](const Status& s, Result r) {
    *result = std::move(r);
    done.set_value(s);
  });
  return f.get();
}

}  // namespace pointex::engine
