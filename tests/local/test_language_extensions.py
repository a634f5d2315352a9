"""Fn::ForEach and Fn::FindInMap's DefaultValue as the local stack's template reader expands them
(AWS::LanguageExtensions, as CloudFormation applies it before the SAM transform)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from smsrelay_local.stack import Template
from smsrelay_local.stack.language_extensions import LanguageExtensionError, expand
from smsrelay_local.stack.template import TemplateError


def loop(identifier: str, collection: Any, fragment: dict[str, Any]) -> list[Any]:
    return [identifier, collection, fragment]


def test_keys_strings_and_refs_take_each_item() -> None:
    template = {
        "Resources": {
            "Plain": {"Type": "AWS::SNS::Topic"},
            "Fn::ForEach::Topics": loop(
                "Name",
                ["a", "b"],
                {
                    "Topic${Name}": {
                        "Type": "AWS::SNS::Topic",
                        "Properties": {
                            "TopicName": {"Fn::Sub": "${AWS::StackName}-${Name}"},
                            "DisplayName": "topic ${Name}",  # CloudFormation substitutes in every string
                            "Tags": [{"Key": "name", "Value": {"Ref": "Name"}}],
                            "Other": {"Ref": "NameOfSomethingElse"},  # a different identifier stays
                        },
                    }
                },
            ),
        }
    }
    resources = expand(template, {})["Resources"]
    assert list(resources) == ["Plain", "Topica", "Topicb"]
    assert resources["Topicb"]["Properties"] == {
        "TopicName": {"Fn::Sub": "${AWS::StackName}-b"},
        "DisplayName": "topic b",
        "Tags": [{"Key": "name", "Value": "b"}],
        "Other": {"Ref": "NameOfSomethingElse"},
    }
    assert "Fn::ForEach::Topics" in template["Resources"]  # the input is left as it was


def test_a_collection_from_a_list_parameter_and_ampersand_keys() -> None:
    template = {
        "Conditions": {
            "Fn::ForEach::On": loop("Host", {"Ref": "Hosts"}, {"Is&{Host}": {"Fn::Equals": ["${Host}", "x"]}})
        },
        "Outputs": {
            "Fn::ForEach::Out": loop("Host", {"Ref": "Hosts"}, {"Url&{Host}": {"Value": "http://${Host}/"}})
        },
    }
    expanded = expand(template, {"Hosts": "10.0.0.1,a-b"})
    assert expanded["Conditions"] == {
        "Is10001": {"Fn::Equals": ["10.0.0.1", "x"]},
        "Isab": {"Fn::Equals": ["a-b", "x"]},
    }
    assert expanded["Outputs"]["Urlab"] == {"Value": "http://a-b/"}
    assert expand(template, {"Hosts": ["c"]})["Outputs"] == {"Urlc": {"Value": "http://c/"}}


def test_nested_loops_and_references_spelt_by_the_loop() -> None:
    template = {
        "Resources": {
            "Fn::ForEach::Vendors": loop(
                "Vendor",
                ["x", "y"],
                {
                    "Fn::ForEach::Kinds": loop(
                        "Kind",
                        ["Log", "Dlq"],
                        {
                            "${Vendor}${Kind}": {
                                "Type": "AWS::SQS::Queue",
                                "Properties": {
                                    "Uses": {"Ref": {"Fn::Sub": "Other${Vendor}"}},
                                    "Arn": {"Fn::GetAtt": [{"Fn::Sub": "Other${Vendor}"}, "Arn"]},
                                    "Kept": {"Ref": {"Fn::Sub": "${AWS::Region}"}},
                                },
                            }
                        },
                    )
                },
            )
        }
    }
    resources = expand(template, {})["Resources"]
    assert sorted(resources) == ["xDlq", "xLog", "yDlq", "yLog"]
    assert resources["yLog"]["Properties"] == {
        "Uses": {"Ref": "Othery"},  # the form cfn-lint follows, made the plain reference
        "Arn": {"Fn::GetAtt": ["Othery", "Arn"]},
        "Kept": {"Ref": {"Fn::Sub": "${AWS::Region}"}},  # still something to substitute: left alone
    }


@pytest.mark.parametrize(
    ("section", "parameters", "message"),
    [
        ({"Fn::ForEach::X": loop("V", ["a", "a"], {"R${V}": {}})}, {}, "generated twice"),
        ({"R": {}, "Fn::ForEach::X": loop("V", ["", "b"], {"R${V}": {}})}, {}, "defined twice"),
        ({"Fn::ForEach::X": loop("V", {"Ref": "Missing"}, {"R${V}": {}})}, {}, "names no parameter"),
        ({"Fn::ForEach::X": ["V", ["a"]]}, {}, "expected \\[Identifier, Collection"),
        ({"Fn::ForEach::X": loop("V", [{"a": 1}], {"R${V}": {}})}, {}, "list of values"),
    ],
)
def test_a_loop_that_cannot_be_expanded_says_why(section: dict, parameters: dict, message: str) -> None:
    with pytest.raises(LanguageExtensionError, match=message):
        expand({"Resources": section}, parameters)


def _write(tmp_path: Path, template: dict[str, Any]) -> Path:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    return path


def test_the_reader_expands_loops_and_finds_map_defaults(tmp_path: Path) -> None:
    """Functions, routes and values made by a loop reach the local stack like written ones."""
    (tmp_path / "fn").mkdir()
    template = {
        "Transform": ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"],
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "one,two"}},
        "Mappings": {"Limits": {"one": {"Max": "5"}}},
        "Resources": {
            "Fn::ForEach::Fns": loop(
                "Name",
                {"Ref": "Names"},
                {
                    "Fn${Name}": {
                        "Type": "AWS::Serverless::Function",
                        "Properties": {
                            "CodeUri": "fn/",
                            "Handler": "app.handler",
                            "Environment": {
                                "Variables": {
                                    "NAME": "${Name}",
                                    "MAX": {
                                        "Fn::FindInMap": [
                                            "Limits",
                                            {"Ref": "Name"},
                                            "Max",
                                            {"DefaultValue": "1"},
                                        ]
                                    },
                                }
                            },
                            "Events": {
                                "Push": {
                                    "Type": "HttpApi",
                                    "Properties": {"Path": "/in/${Name}", "Method": "POST"},
                                }
                            },
                        },
                    }
                },
            )
        },
    }
    reader = Template(_write(tmp_path, template), parameters={"Names": "one,two,three"})
    functions = {f.logical_id: f for f in reader.functions()}
    assert sorted(functions) == ["Fnone", "Fnthree", "Fntwo"]
    assert {n: (f.env["NAME"], f.env["MAX"]) for n, f in functions.items()} == {
        "Fnone": ("one", "5"),
        "Fntwo": ("two", "1"),
        "Fnthree": ("three", "1"),
    }
    assert [(r.method, r.path) for r in functions["Fnthree"].routes] == [("POST", "/in/three")]
    with pytest.raises(TemplateError, match=r"no Limits\.two\.Max"):
        reader.resolve({"Fn::FindInMap": ["Limits", "two", "Max"]})


def test_the_reader_reports_a_broken_loop(tmp_path: Path) -> None:
    template = {
        "Transform": "AWS::LanguageExtensions",
        "Resources": {"Fn::ForEach::X": loop("V", {"Ref": "Nope"}, {"R${V}": {"Type": "AWS::SNS::Topic"}})},
    }
    with pytest.raises(TemplateError, match="names no parameter"):
        Template(_write(tmp_path, template))
