// A labelling front end people reach over the network (the web app: RlhfSharp.Web's LabelingApp.StartAsync), as the
// layers below the web see it: where it listens, and when it stops by itself. Disposing it stops it. A trainer that waits
// for people's judgments (the demo's labels stage) is handed a way to start one, so it never depends on the web app.
namespace RlhfSharp.Feedback;

public interface ILabelingFrontEnd : IAsyncDisposable
{
    /// <summary>The address people open (http://host:port).</summary>
    Uri Address { get; }

    /// <summary>Fires when the front end stops by itself (the web host answers SIGINT and SIGTERM by stopping).</summary>
    CancellationToken Stopping { get; }
}
