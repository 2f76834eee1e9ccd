// Bad settings are refused before anything listens, with the field and the offending value in the message.
namespace RlhfSharp.Web.Tests;

public sealed class LabelingAppOptionsTests
{
    [Theory]
    [InlineData("port", "70000")]
    [InlineData("overlap", "0")]
    [InlineData("gold rate", "1.5")]
    [InlineData("max request body", "10")]
    public void Given_an_out_of_range_setting_When_validating_Then_the_message_names_field_and_value(string field, string value)
    {
        var o = new LabelingAppOptions();
        o = field switch
        {
            "port" => o with { Port = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
            "overlap" => o with { Overlap = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
            "gold rate" => o with { GoldRate = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
            _ => o with { MaxRequestBodyBytes = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
        };
        var ex = Assert.Throws<ArgumentException>(o.Validate);
        Assert.Contains(field, ex.Message);
        Assert.Contains(value, ex.Message);
    }

    [Fact]
    public async Task Given_a_host_that_is_not_an_address_When_building_Then_refused_naming_it()
    {
        await using var store = new InMemoryPreferenceStore();
        var ex = Assert.Throws<ArgumentException>(() => LabelingApp.Build(store, new LabelingAppOptions(Host: "example.org", Port: 0)));
        Assert.Contains("example.org", ex.Message);
    }

    [Theory]
    [InlineData("127.0.0.1", null, false)]
    [InlineData("127.0.0.2", null, false)]
    [InlineData("::1", null, false)]
    [InlineData("localhost", null, false)]
    [InlineData("0.0.0.0", null, true)]
    [InlineData("192.168.1.20", null, true)]
    [InlineData("0.0.0.0", false, false)]
    [InlineData("127.0.0.1", true, true)]
    public void Given_a_host_and_the_secure_cookies_switch_When_resolving_Then_cookies_are_secure_unless_on_loopback_or_turned_off(string host, bool? secure, bool expected) =>
        Assert.Equal(expected, new LabelingAppOptions(Host: host, SecureCookies: secure).CookiesAreSecure);
}
