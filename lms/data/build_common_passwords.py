"""Write ``common-passwords.txt``: the passwords and words the password policy refuses.

The list is generated, not copied from a breach corpus, so it can ship under the project's own
terms: the most common passwords and the patterns everyone uses to stretch them to a length rule
(years, ``123``, ``!``, letter-for-digit swaps), keyboard walks and digit runs, plus words a police
department's members are likely to choose. Regenerate with ``python lms/data/build_common_passwords.py``.
The policy compares case-insensitively, so every entry is lower case.
"""
from __future__ import annotations

from pathlib import Path

COMMON = """
password passw0rd p@ssword p@ssw0rd pa55word passwort motdepasse contrasena secret secret123
qwerty qwertyuiop qwertyuiopasdf asdfghjkl asdfghjkl123 zxcvbnm zxcvbnm123 qazwsx qazwsxedc
1qaz2wsx 1qaz2wsx3edc 1qaz2wsx3edc4rfv zaq12wsx zaq1zaq1 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y
q1w2e3r4t5y6 qweasdzxc qweasd qwe123 asd123 zxc123 abc123 abcd1234 abcdef abcdefgh
letmein letmeinnow welcome welcome1 welcomehome iloveyou iloveyou2 ilovegod ilovejesus
admin administrator root toor guest user login access changeme default test tester testing
monkey dragon football baseball basketball soccer hockey golf tennis lacrosse wrestling
sunshine princess shadow master superman batman spiderman ironman wolverine starwars startrek
trustno1 whatever freedom charlie michael jennifer jordan jordan23 hunter ranger harley buster
thomas robert daniel jessica ashley michelle nicole matthew andrew joshua anthony william
christopher jonathan elizabeth samantha stephanie amanda melissa heather richard joseph
computer internet google microsoft apple samsung iphone android windows linux
flower cookie chocolate pepper ginger maggie bailey tigger buddy rocky lucky molly daisy
yankees cowboys eagles bears cubs whitesox bulls blackhawks packers steelers lakers raiders
mustang corvette ferrari camaro chevrolet harleydavidson
hello hellokitty helloworld loveme lovely babygirl angel angels jesus jesuschrist blessed
godisgood faith america usa chicago illinois elgin liverpool arsenal chelsea manchester
pokemon minecraft fortnite naruto matrix killer soldier nothing forever family familyfirst
superstar rockstar sweetheart sweetie honey cheese banana orange purple summer winter spring
autumn fall monday friday january february march april june july august september october
november december unknown nopassword mypassword yourpassword newpassword oldpassword
temppassword temporary passphrase mypassphrase correcthorsebatterystaple
""".split()

DEPARTMENT = """
police policeofficer policeman policewoman policedepartment policedept officer patrolman
patrolofficer patrol sheriff deputy deputysheriff detective sergeant lieutenant captain
commander chief chiefofpolice trooper statetrooper dispatch dispatcher telecommunicator
badge badgenumber mybadge blueline thinblueline thinbluelinefamily backtheblue bluelivesmatter
protectandserve toprotectandserve protect serve lawenforcement lawandorder leo cop copper
swat swatteam k9 k9unit canine squadcar cruiser precinct district beat elginpolice elginpd
epd elginil elginillinois rollcall training trainingday academy policeacademy firstresponder
officersafety tenfour 10-4 code3 codethree fieldtraining internalaffairs handcuffs glock
sigsauer taser bodycam evidence citation warrant justice honor integrity courage sworn oath
servewithhonor honorandcourage bravery brotherhood blueknights fop fraternalorderofpolice
policeunion policeman1 officerdown endofwatch onduty offduty nightshift dayshift midnights
graveyard sergeantatarms watchcommander acknowledge acknowledgment policy socialmedia
""".split()

YEARS = [str(y) for y in range(1960, 2036)]
SEASONS = ["spring", "summer", "fall", "autumn", "winter"]
# Letter-for-symbol swaps people use to satisfy composition rules; the policy also undoes them.
LEET = str.maketrans({"a": "@", "o": "0", "e": "3", "i": "1", "s": "$"})

WALKS = """
qwertyuiop1234 qwertyuiop12 qwertyuiop123 qwertyuiopasdfgh qwertyuiop[] 1qaz2wsx3edc4rfv5tgb
1q2w3e4r5t6y7u 1q2w3e4r5t6y7u8i 1q2w3e4r5t6y7u8i9o0p q1w2e3r4t5y6u7 zaq12wsxcde3 zaq12wsxcde34rfv
qazwsxedcrfv qazwsxedcrfvtgb asdfghjkl;' asdfghjklqwerty qwertyasdfgh qwertyasdfghzxcvbn
zxcvbnmasdfghjkl !@#$%^&*()_+ !qaz@wsx#edc 1234qwerasdf 1234qwerasdfzxcv qwer1234asdf
abcdefghijkl abcdefghijklmnop abcdefghijklmnopqrstuvwxyz abc123abc123 abcabcabcabc
aaaaaaaaaaaa aaaaaaaaaaaaaaaa abcd1234abcd1234 password1password
""".split()


def digit_runs() -> set[str]:
    """Runs of digits people type to reach a length: 123456789012, 111111111111, 121212121212."""
    runs = set()
    up, down = "1234567890" * 4, "9876543210" * 4
    for n in range(12, 21):
        runs.add(up[:n])
        runs.add(("0123456789" * 3)[:n])
        runs.add(down[:n])
        for d in "0123456789":
            runs.add(d * n)
        for pair in ("12", "21", "69", "13", "11", "10", "01", "00"):
            runs.add((pair * n)[:n])
        for triple in ("123", "321", "159", "147", "258", "369", "789", "987", "456", "420"):
            runs.add((triple * n)[:n])
    runs.update({"12345678910", "1234567891011", "123456789101112", "123456123456", "123123123123",
                 "147258369147", "159753159753", "123654789632", "741852963741", "1029384756",
                 "102938475610", "112233445566", "111222333444", "123321123321", "098765432112"})
    return runs


def entries() -> set[str]:
    """Every refused password, lower case.

    Digits and symbols tacked on before or after a listed word ("Policeofficer2024!") are caught
    by the policy, which also looks up the password with them stripped; so the list holds the
    bare words and only those stretched forms that stripping does not reduce to a word.
    """
    words = {w.lower() for w in COMMON + DEPARTMENT}
    out = set(words) | {w.translate(LEET) for w in words}
    for word in words:
        out.update({word * 2, "my" + word, "the" + word, "ilove" + word, word + "forever",
                    word + "4ever", word + "rules", word + "password", "password" + word})
    for season in SEASONS:
        for year in YEARS:
            out.add(season + year + season)
    out.update(WALKS)
    out.update(digit_runs())
    return out


def main() -> None:
    path = Path(__file__).with_name("common-passwords.txt")
    header = ("# Common passwords refused by Roll Call's password policy (one a line, lower case).\n"
              "# Generated by build_common_passwords.py from well-known patterns; no breach data.\n")
    path.write_text(header + "".join(f"{e}\n" for e in sorted(entries())), encoding="utf-8")


if __name__ == "__main__":
    main()
