namespace RlhfSharp.Tensors.Tests;
public sealed class SmokeTests { [Fact] public void One() => Assert.Equal(2, 1 + 1); }
