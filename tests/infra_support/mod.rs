//! Shared by the infra_* tests: infra/template.yaml read as JSON (through
//! cfn-lint's own parser, so short-form intrinsics decode exactly as
//! CloudFormation's linter sees them) and a small evaluator of the
//! intrinsics the template uses, under parameter values (the defaults
//! unless overridden). Resource references resolve to the physical values
//! AWS would give them (queue URLs, ARNs) in a fixed account and region.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

#[path = "../common/mod.rs"]
pub mod common;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// A YAML file as JSON; `cfn`: as a CloudFormation template.
pub fn yaml_json(path: &Path, cfn: bool) -> Value {
    let path = path.display().to_string();
    let mut args = Vec::new();
    if cfn {
        args.push("--cfn");
    }
    args.push(&path);
    let out = common::run_python("infra_yaml_json.py", &args, None);
    serde_json::from_slice(&out.stdout).expect("the helper prints JSON")
}

/// The template, parsed once per test binary.
pub fn template_json() -> Value {
    static TEMPLATE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| yaml_json(&common::repo_root().join("infra/template.yaml"), true))
        .clone()
}

/// A parameter's value as CloudFormation passes it: text, or a list for
/// `CommaDelimitedList`.
fn param_value(def: &Value, given: Option<&str>) -> Value {
    let text = match given {
        Some(v) => v.to_string(),
        None => match &def["Default"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        },
    };
    if def["Type"] == "CommaDelimitedList" {
        Value::Array(text.split(',').map(|s| json!(s.trim())).collect())
    } else {
        Value::String(text)
    }
}

pub struct Stack {
    pub template: Value,
    params: HashMap<String, Value>,
    conditions: HashMap<String, bool>,
}

impl Stack {
    /// The template under its defaults with `overrides` on top.
    pub fn new(template: Value, overrides: &[(&str, &str)]) -> Stack {
        let mut params = HashMap::new();
        let defs = template["Parameters"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, def) in &defs {
            let given = overrides.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
            params.insert(name.clone(), param_value(def, given));
        }
        for (k, _) in overrides {
            assert!(defs.contains_key(*k), "no parameter {k} in the template");
        }
        let mut stack = Stack {
            template,
            params,
            conditions: HashMap::new(),
        };
        let conds = stack.template["Conditions"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, expr) in conds {
            let v = stack.condition(&expr);
            stack.conditions.insert(name, v);
        }
        stack
    }

    pub fn param(&self, name: &str) -> String {
        match &self.params[name] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn param_def(&self, name: &str) -> &Value {
        &self.template["Parameters"][name]
    }

    pub fn is(&self, condition: &str) -> bool {
        self.conditions[condition]
    }

    pub fn resource(&self, name: &str) -> &Value {
        let r = &self.template["Resources"][name];
        assert!(r.is_object(), "no resource {name}");
        r
    }

    /// A resource's properties, every intrinsic evaluated.
    pub fn props(&self, name: &str) -> Value {
        self.eval(&self.resource(name)["Properties"])
    }

    pub fn resources_of_type(&self, ty: &str) -> Vec<String> {
        let mut names: Vec<String> = self.template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == ty)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    fn condition(&self, expr: &Value) -> bool {
        let obj = expr.as_object().expect("a condition is an object");
        let (f, args) = obj.iter().next().expect("one function");
        match f.as_str() {
            // CloudFormation compares scalars as the strings parameters are.
            "Fn::Equals" => {
                let (a, b) = (self.eval(&args[0]), self.eval(&args[1]));
                match (&a, &b) {
                    (Value::Array(_), _) | (_, Value::Array(_)) => a == b,
                    _ => text(&a) == text(&b),
                }
            }
            "Fn::Not" => !self.condition(&args[0]),
            "Fn::And" => args.as_array().unwrap().iter().all(|a| self.condition(a)),
            "Fn::Or" => args.as_array().unwrap().iter().any(|a| self.condition(a)),
            "Condition" => self.conditions[args.as_str().unwrap()],
            other => panic!("condition function {other} not handled"),
        }
    }

    fn name_prop(&self, resource: &str, prop: &str) -> String {
        text(&self.props(resource)[prop])
    }

    /// What `Ref` to a resource returns.
    fn ref_resource(&self, name: &str) -> Value {
        if let Some(function) = name.strip_suffix(".Alias") {
            let r = self.resource(function);
            let alias = text(&r["Properties"]["AutoPublishAlias"]);
            return json!(format!(
                "{}:{alias}",
                self.name_prop(function, "FunctionName")
            ));
        }
        let r = self.resource(name);
        let ty = r["Type"].as_str().unwrap();
        json!(match ty {
            "AWS::SQS::Queue" => format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                self.name_prop(name, "QueueName")
            ),
            "AWS::DynamoDB::Table" => self.name_prop(name, "TableName"),
            "AWS::Kinesis::Stream" => self.name_prop(name, "Name"),
            "AWS::SecretsManager::Secret" => format!(
                "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{}-AbCdEf",
                self.name_prop(name, "Name")
            ),
            "AWS::Logs::LogGroup" => self.name_prop(name, "LogGroupName"),
            "AWS::Serverless::Function" => self.name_prop(name, "FunctionName"),
            other => panic!("Ref to a {other} not handled"),
        })
    }

    fn get_att(&self, name: &str, attr: &str) -> Value {
        let ty = self.resource(name)["Type"].as_str().unwrap().to_string();
        json!(match (ty.as_str(), attr) {
            ("AWS::SQS::Queue", "Arn") => format!(
                "arn:aws:sqs:{REGION}:{ACCOUNT}:{}",
                self.name_prop(name, "QueueName")
            ),
            ("AWS::SQS::Queue", "QueueName") => self.name_prop(name, "QueueName"),
            ("AWS::Kinesis::Stream", "Arn") => format!(
                "arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{}",
                self.name_prop(name, "Name")
            ),
            ("AWS::DynamoDB::Table", "Arn") => format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}",
                self.name_prop(name, "TableName")
            ),
            ("AWS::Logs::LogGroup", "Arn") => format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}:*",
                self.name_prop(name, "LogGroupName")
            ),
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            ("AWS::Serverless::Function", "Arn") => format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                self.name_prop(name, "FunctionName")
            ),
            (ty, attr) => panic!("GetAtt {attr} of a {ty} not handled"),
        })
    }

    fn reference(&self, name: &str) -> Value {
        match name {
            "AWS::Region" => json!(REGION),
            "AWS::AccountId" => json!(ACCOUNT),
            "AWS::Partition" => json!("aws"),
            "AWS::NoValue" => Value::Null,
            _ => match self.params.get(name) {
                Some(v) => v.clone(),
                None => self.ref_resource(name),
            },
        }
    }

    fn sub(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${") + start;
            let var = &rest[start + 2..end];
            let value = match var.split_once('.') {
                Some((r, attr)) if !var.starts_with("AWS::") => self.get_att(r, attr),
                _ => self.reference(var),
            };
            out.push_str(&text(&value));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Evaluates every intrinsic in `v`; `AWS::NoValue` drops the key.
    pub fn eval(&self, v: &Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .filter(|i| !i.is_null())
                    .collect(),
            ),
            Value::Object(obj) if obj.len() == 1 => {
                let (k, arg) = obj.iter().next().unwrap();
                match k.as_str() {
                    "Ref" => self.reference(arg.as_str().unwrap()),
                    "Fn::If" => {
                        let c = self.conditions[arg[0].as_str().unwrap()];
                        self.eval(&arg[if c { 1 } else { 2 }])
                    }
                    "Fn::Sub" => json!(self.sub(arg.as_str().expect("Sub without variables map"))),
                    "Fn::GetAtt" => {
                        self.get_att(arg[0].as_str().unwrap(), arg[1].as_str().unwrap())
                    }
                    "Fn::FindInMap" => {
                        let keys: Vec<String> = arg
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| text(&self.eval(a)))
                            .collect();
                        self.template["Mappings"][&keys[0]][&keys[1]][&keys[2]].clone()
                    }
                    "Fn::Join" => {
                        let sep = arg[0].as_str().unwrap();
                        let parts = self.eval(&arg[1]);
                        json!(parts
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(text)
                            .collect::<Vec<_>>()
                            .join(sep))
                    }
                    _ => Value::Object(
                        [(k.clone(), self.eval(arg))]
                            .into_iter()
                            .filter(|(_, v)| !v.is_null())
                            .collect(),
                    ),
                }
            }
            Value::Object(obj) => Value::Object(
                obj.iter()
                    .map(|(k, v)| (k.clone(), self.eval(v)))
                    .filter(|(_, v)| !v.is_null())
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }

    /// The function's environment, evaluated.
    pub fn environment(&self) -> Vec<(String, String)> {
        let env = self.props("TickbridgeFunction")["Environment"]["Variables"].clone();
        env.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect()
    }
}

/// A scalar as text (numbers and booleans as CloudFormation stringifies them).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A parameter's `AllowedValues` as text.
pub fn allowed(def: &Value) -> Vec<String> {
    def["AllowedValues"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}
