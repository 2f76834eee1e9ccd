// Waiting synchronously for asynchronous work without the sync-over-async stall. `task.GetAwaiter().GetResult()` on a thread
// that carries a SynchronizationContext with a fixed set of threads (xunit 2 runs tests on one with a thread per core; a UI
// has one thread) blocks that thread while the task's awaits post their continuations back to the same context: the task
// then waits for another of its threads to come free. In the test suite that turned a 6-second test into 15 minutes, as long
// as the learning test beside it held the other thread. Blocking.Run starts the work on the thread pool, where there is no
// context to post to, and waits there. The CLI's console has no context, so for it this changes nothing.
namespace RlhfSharp.Feedback;

public static class Blocking
{
    /// <summary>Runs <paramref name="start"/> on the thread pool and waits for its result (exceptions rethrown unwrapped).</summary>
    public static T Run<T>(Func<Task<T>> start) => Task.Run(start).GetAwaiter().GetResult();

    /// <summary>Runs <paramref name="start"/> on the thread pool and waits for it (exceptions rethrown unwrapped).</summary>
    public static void Run(Func<Task> start) => Task.Run(start).GetAwaiter().GetResult();
}
