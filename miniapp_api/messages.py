"""Every Chinese sentence the mini-app API says on its own (domain errors bring their own)."""

BAD_JSON = "请求体不是合法的 JSON 对象"
BAD_REQUEST = "请求格式不正确"
UNAUTHENTICATED = "请先登录"
TOKEN_EXPIRED = "登录已过期，请重新登录"
TOKEN_INVALID = "登录凭证无效，请重新登录"
USER_INACTIVE = "账号已停用，请联系管理员"
TOKEN_REVOKED = "登录已退出或被注销，请重新登录"
TOO_MANY_SIGN_INS = "登录尝试过于频繁，请 {seconds} 秒后再试"
SIGN_IN_UNAVAILABLE = "暂时无法登录，请稍后再试"
LOGOUT_UNAVAILABLE = "暂时无法退出登录，请稍后再试"
NO_SUCH_ROUTE = "接口不存在"
METHOD_NOT_ALLOWED = "不支持该请求方法"
TOO_LARGE = "上传内容过大"
UNSUPPORTED_MEDIA = "请求内容类型不支持"
INTERNAL = "服务器开小差了，请稍后再试"
UNKNOWN_PARAMETER = "不支持查询参数「{name}」；可用的参数：{declared}"
NO_PARAMETERS = "不支持查询参数「{name}」；该接口不接受查询参数"
VALIDATION = "字段「{field}」{reason}"
UNKNOWN_WECOM_USER = "该企业微信账号尚未开通 wecrm，请联系管理员"
BAD_CODE = "登录码无效或已过期，请重新进入小程序"
WECOM_UNAVAILABLE = "暂时无法连接企业微信，请稍后再试"
DEV_LOGIN_UNKNOWN = "没有这个成员"
COMPARE_PERIOD_INCOMPLETE = "对比期需要同时给出开始日期和结束日期"

# pydantic error types in the users' words; anything else is "格式不正确".
VALIDATION_REASONS = {
    "missing": "为必填项",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_parsing": "应为是或否",
    "bool_type": "应为是或否",
    "date_from_datetime_parsing": "应为日期，如 2026-03-01",
    "date_parsing": "应为日期，如 2026-03-01",
    "datetime_from_date_parsing": "应为时间，如 2026-03-01T09:30:00+08:00",
    "datetime_parsing": "应为时间，如 2026-03-01T09:30:00+08:00",
    "timezone_aware": "需要带时区",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "过小",
    "less_than_equal": "过大",
    "greater_than": "过小",
    "less_than": "过大",
    "too_long": "项数过多",
    "extra_forbidden": "是未知字段",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "string_pattern_mismatch": "格式不正确",
    "value_error": "包含不可见的控制字符或无效字符",
}
