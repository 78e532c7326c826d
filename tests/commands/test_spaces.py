"""``wsnas spaces``: every choice's options are listed, not only the first choice's."""

from wsnas.cli import main


def test_the_listing_names_every_option_set_with_its_count(capsys):
    assert main(["spaces"]) == 0
    lines = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["tiny64"] == ("tiny64: 64 architectures, 3 choices: "
                               "3 x {max_pool_3x3, sep_conv_3x3, sep_conv_5x5, dil_conv_5x5}")
    # the mobile space's first layer of a stage has no skip; the other 15 layers have one
    assert lines["mobile"].endswith("21 choices: 15 x {k3e3, k3e6, k5e3, k5e6, k7e3, k7e6, skip}; "
                                    "6 x {k3e3, k3e6, k5e3, k5e6, k7e3, k7e6}")
    # DARTS: 16 op choices, then the input pairs of nodes 0 and 1, and the rest summed up
    assert "24 choices: 16 x {none, max_pool_3x3," in lines["darts"]
    assert "; 2 x {0,1}; 2 x {0,1, 0,2, 1,2}; and 2 more option sets" in lines["darts"]
