// A [Fact] that a test class can skip as a whole when the server it needs is absent: the class declares
// `public static string? SkipReason`, read once at discovery (xunit 2 has no run-time Assert.Skip).
using System.ComponentModel;
using Xunit;
using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace RlhfSharp.TestSupport;

[XunitTestCaseDiscoverer("RlhfSharp.TestSupport.ServerFactDiscoverer", "RlhfSharp.TestSupport")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class ServerFactAttribute : FactAttribute;

public sealed class ServerFactDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        var type = testMethod.TestClass.Class.ToRuntimeType();
        var reason = type.GetProperty("SkipReason", BindingFlags.Public | BindingFlags.Static | BindingFlags.FlattenHierarchy)?.GetValue(null) as string;
        yield return new ServerTestCase(diagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod, reason);
    }
}

public sealed class ServerTestCase : XunitTestCase
{
    private string? _skipReason;

    [EditorBrowsable(EditorBrowsableState.Never)]
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public ServerTestCase() { }

    public ServerTestCase(IMessageSink sink, TestMethodDisplay display, TestMethodDisplayOptions options, ITestMethod method, string? skipReason)
        : base(sink, display, options, method)
    {
        _skipReason = skipReason;
        SkipReason = skipReason;
    }

    protected override string? GetSkipReason(IAttributeInfo factAttribute) => _skipReason ?? base.GetSkipReason(factAttribute);

    public override void Serialize(IXunitSerializationInfo data)
    {
        base.Serialize(data);
        data.AddValue("ServerSkipReason", _skipReason);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        base.Deserialize(data);
        _skipReason = data.GetValue<string>("ServerSkipReason");
        if (_skipReason is not null) SkipReason = _skipReason;
    }
}
